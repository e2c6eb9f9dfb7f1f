// A small counting executor for tests: runs a program like the reference interpreter and counts
// how often each load/store/atomic slot executes, to weigh the verifier's verdicts by execution.
// It is deliberately simple (BigInt registers, a switch over `classify`) and it is only trusted
// because tests check that it ends with the interpreter's r0 and the interpreter's step count on
// every program it is used for: a divergence in control flow would change one or the other.
import { lddwValue } from '../compiler/decode.js';
import { classify, isInvalid, type Classified } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import { containerLayout, STACK_FRAME } from '../runtime/layout.js';
import { RegionTable } from '../runtime/regions.js';

export interface Trace {
  ok: boolean;
  r0: bigint;
  steps: number;
  /** Executions per memory-access slot. */
  accesses: Map<number, number>;
}

const M64 = (1n << 64n) - 1n;
const u64 = (v: bigint): bigint => v & M64;
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const u32 = (v: bigint): bigint => v & 0xffffffffn;
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);

/** Runs with mem; helper calls are not supported (the traced programs make none). */
export function traceRun(prog: Program, mem: Uint8Array, budget = 50_000_000): Trace {
  const layout = containerLayout(prog, mem);
  const table = new RegionTable(layout.regions);
  const relocAt = new Map(prog.relocs.map((r) => [r.slot, r]));
  const cls: (Classified | undefined)[] = prog.insns.map((i) => {
    const c = classify(i);
    return isInvalid(c) ? undefined : c;
  });
  const R = new Array<bigint>(11).fill(0n);
  R[1] = BigInt(layout.mem?.base ?? 0);
  R[2] = BigInt(mem.length);
  const stackTop = layout.stack.base + layout.stack.bytes.length;
  R[10] = BigInt(stackTop);
  const frames: { ret: number; saved: bigint[] }[] = [];
  const accesses = new Map<number, number>();
  let pc = prog.entry;
  let steps = 0;
  const mem8 = (addr: bigint, size: number, write: boolean): { view: DataView; at: number } | undefined => {
    const r = table.findAddr(addr, size, write);
    if (typeof r === 'string') return undefined;
    return { view: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength), at: Number(u64(addr)) - r.base };
  };
  const load = (v: DataView, at: number, size: number): bigint =>
    size === 1 ? BigInt(v.getUint8(at)) : size === 2 ? BigInt(v.getUint16(at, true)) : size === 4 ? BigInt(v.getUint32(at, true)) : v.getBigUint64(at, true);
  const store = (v: DataView, at: number, size: number, x: bigint): void => {
    if (size === 1) v.setUint8(at, Number(x & 0xffn));
    else if (size === 2) v.setUint16(at, Number(x & 0xffffn), true);
    else if (size === 4) v.setUint32(at, Number(x & 0xffffffffn), true);
    else v.setBigUint64(at, u64(x), true);
  };
  for (;;) {
    if (++steps > budget) return { ok: false, r0: 0n, steps: steps - 1, accesses };
    const insn = prog.insns[pc];
    const c = cls[pc];
    if (insn === undefined || c === undefined) return { ok: false, r0: 0n, steps, accesses };
    const i = pc++;
    const d = insn.dst;
    const imm = BigInt(insn.imm);
    switch (c.form) {
      case 'alu': {
        const w = c.wide;
        const a = w ? R[d] : u32(R[d]);
        const b = c.srcReg ? (w ? R[insn.src] : u32(R[insn.src])) : (w ? u64(imm) : u32(imm));
        const bits = w ? 64n : 32n;
        const M = w ? M64 : 0xffffffffn;
        const sx = (v: bigint): bigint => (w ? s64(v) : s32(v));
        let r: bigint;
        switch (c.alu) {
          case 'add': r = a + b; break;
          case 'sub': r = a - b; break;
          case 'mul': r = a * b; break;
          case 'div': r = b === 0n ? 0n : a / b; break;
          case 'mod': r = b === 0n ? a : a % b; break;
          case 'sdiv': r = b === 0n ? 0n : sx(a) / sx(b); break;
          case 'smod': r = b === 0n ? a : sx(a) % sx(b); break;
          case 'or': r = a | b; break;
          case 'and': r = a & b; break;
          case 'xor': r = a ^ b; break;
          case 'lsh': r = a << (b & (bits - 1n)); break;
          case 'rsh': r = a >> (b & (bits - 1n)); break;
          case 'arsh': r = sx(a) >> (b & (bits - 1n)); break;
          case 'mov': r = b; break;
          case 'movsx': r = BigInt.asIntN(c.signExtend ?? 64, b); break;
          default: r = a;
        }
        R[d] = r & M;
        break;
      }
      case 'neg': R[d] = c.wide ? u64(-R[d]) : u32(-R[d]); break;
      case 'end': {
        const bits = insn.imm;
        const v = R[d] & ((1n << BigInt(bits)) - 1n);
        if (c.end === 'le') { R[d] = v; break; }
        let out = 0n;
        for (let k = 0; k < bits / 8; k++) out = (out << 8n) | ((v >> BigInt(8 * k)) & 0xffn);
        R[d] = out;
        break;
      }
      case 'lddw': {
        const r = relocAt.get(i);
        R[d] = r ? BigInt(layout.data[r.section].base + r.addend) : lddwValue(prog.insns, i);
        pc++;
        break;
      }
      case 'ldx': case 'st': case 'stx': case 'atomic': {
        accesses.set(i, (accesses.get(i) ?? 0) + 1);
        const size = c.size ?? 8;
        const base = c.form === 'ldx' ? R[insn.src] : R[d];
        const hit = mem8(u64(base + BigInt(insn.off)), size, c.form !== 'ldx');
        if (hit === undefined) return { ok: false, r0: 0n, steps, accesses };
        if (c.form === 'ldx') {
          const v = load(hit.view, hit.at, size);
          R[d] = c.signExtend ? u64(BigInt.asIntN(size * 8, v)) : v;
        } else if (c.form === 'st') {
          store(hit.view, hit.at, size, u64(imm));
        } else if (c.form === 'stx') {
          store(hit.view, hit.at, size, R[insn.src]);
        } else {
          const old = load(hit.view, hit.at, size);
          const v = size === 4 ? u32(R[insn.src]) : R[insn.src];
          const ops: Record<string, bigint> = { add: old + v, or: old | v, and: old & v, xor: old ^ v, xchg: v };
          let nv = c.atomic === 'cmpxchg' ? (old === (size === 4 ? u32(R[0]) : R[0]) ? v : old) : ops[c.atomic ?? 'add'];
          nv = size === 4 ? u32(nv) : u64(nv);
          store(hit.view, hit.at, size, nv);
          if (c.atomic === 'cmpxchg') R[0] = old;
          else if (c.fetch) R[insn.src] = old;
        }
        break;
      }
      case 'ja': pc = i + 1 + (c.wide ? insn.off : insn.imm); break;
      case 'jcond': {
        const w = c.wide;
        const a = w ? R[d] : u32(R[d]);
        const b = c.srcReg ? (w ? R[insn.src] : u32(R[insn.src])) : (w ? u64(imm) : u32(imm));
        const sx = (v: bigint): bigint => (w ? s64(v) : s32(v));
        const take: Record<string, boolean> = {
          jeq: a === b, jne: a !== b, jgt: a > b, jge: a >= b, jlt: a < b, jle: a <= b, jset: (a & b) !== 0n,
          jsgt: sx(a) > sx(b), jsge: sx(a) >= sx(b), jslt: sx(a) < sx(b), jsle: sx(a) <= sx(b),
        };
        if (take[c.jmp ?? 'jeq']) pc = i + 1 + insn.off;
        break;
      }
      case 'call':
        if (!c.local) return { ok: false, r0: 0n, steps, accesses };
        frames.push({ ret: pc, saved: R.slice(6, 11) });
        R[10] = BigInt(stackTop - frames.length * STACK_FRAME);
        pc = i + 1 + insn.imm;
        break;
      case 'exit': {
        const f = frames.pop();
        if (f === undefined) return { ok: true, r0: R[0], steps, accesses };
        pc = f.ret;
        for (let k = 0; k < 5; k++) R[6 + k] = f.saved[k];
        break;
      }
      default:
        return { ok: false, r0: 0n, steps, accesses };
    }
  }
}
