// Structural verifier: what CertrBPF and the Linux kernel check before they run a program, without
// tracking values. Every slot must be a valid instruction with existing registers; jumps and calls
// must land on instruction starts inside their function; no reachable path may run off a function;
// local calls may not recurse or nest too deep; constant stack offsets must stay in the frame; and
// no register may be read before every path to the read has written it.
// Unreachable code is accepted (clang emits some) but must still decode and jump in range.
import { disasmInsn, rawForm } from '../disasm.js';
import { classify, isInvalid, LDDW, LDDW_SRC, type Classified, type Form, type Insn } from '../opcodes.js';
import type { Program } from '../program.js';
import { buildCfg, callTarget, instructionStarts, jumpTarget, type Cfg } from './cfg.js';

export interface StructuralOptions {
  /** Helper ids the runtime provides (`call imm` with src 0). */
  helpers: ReadonlySet<number>;
  /** Most slots a program may have (default 65536). */
  maxInsns?: number;
  /** Most stack frames (the entry plus nested local calls) a call chain may reach (default 8). */
  maxCallDepth?: number;
  /** Bytes of stack per frame, below r10 (default 512). */
  stackSize?: number;
}

export interface Diagnostic {
  /** Slot index of the offending instruction. */
  index: number;
  /** Its disassembly. */
  disasm: string;
  /** Short stable id of the broken rule, e.g. 'jump-range'. */
  rule: string;
  /** Full user-facing text: `instruction 7 (ja +100): jump target 108 is outside ...`. */
  message: string;
}

export class VerifyError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    const more = diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more)` : '';
    super((diagnostics[0]?.message ?? 'the program failed verification') + more);
    this.name = 'VerifyError';
    this.diagnostics = diagnostics;
  }
}

export const DEFAULT_MAX_INSNS = 65536;
export const DEFAULT_MAX_CALL_DEPTH = 8;
export const DEFAULT_STACK_SIZE = 512;

const FP = 10;
const MAX_REG = 10;
const ALL_REGS = 0x7ff;
const ARG_REGS = 0b111110; // r1..r5: clobbered by calls, passed to callees
const bit = (r: number): number => (r <= MAX_REG ? 1 << r : 0);
/** The runtime passes the memory pointer and its length. */
const ENTRY_INIT = bit(1) | bit(2) | bit(FP);
/** A callee may read any argument register, whether or not its caller set it (accepted, not checked). */
const CALLEE_INIT = ARG_REGS | bit(FP);

type RegField = 'dst' | 'src';

/** How an instruction uses registers. */
interface Use {
  /** Register fields the form uses, with the highest register each may name. */
  fields: { field: RegField; max: number }[];
  reads: number[];
  writes: number[];
  /** Memory base register field (its constant offset is `off`). */
  base?: RegField;
  /** A call: afterwards r0 is set and r1..r5 are not. */
  clobbers?: boolean;
}

const DST = { field: 'dst', max: MAX_REG } as const;
const SRC = { field: 'src', max: MAX_REG } as const;

const USES: Record<Form, (insn: Insn, c: Classified) => Use> = {
  alu: (i, c) => {
    const writeOnly = c.alu === 'mov' || c.alu === 'movsx';
    const srcRead = c.srcReg ? [i.src] : [];
    return {
      fields: c.srcReg ? [DST, SRC] : [DST],
      reads: writeOnly ? srcRead : [i.dst, ...srcRead],
      writes: [i.dst],
    };
  },
  neg: (i) => ({ fields: [DST], reads: [i.dst], writes: [i.dst] }),
  end: (i) => ({ fields: [DST], reads: [i.dst], writes: [i.dst] }),
  lddw: (i) => ({ fields: [DST], reads: [], writes: [i.dst] }),
  ldx: (i) => ({ fields: [DST, SRC], reads: [i.src], writes: [i.dst], base: 'src' }),
  st: (i) => ({ fields: [DST], reads: [i.dst], writes: [], base: 'dst' }),
  stx: (i) => ({ fields: [DST, SRC], reads: [i.dst, i.src], writes: [], base: 'dst' }),
  // cmpxchg compares with r0 and returns the old value in r0; the other fetch forms return it in src.
  atomic: (i, c) => ({
    fields: [DST, SRC],
    reads: c.atomic === 'cmpxchg' ? [i.dst, i.src, 0] : [i.dst, i.src],
    writes: c.atomic === 'cmpxchg' ? [0] : c.fetch ? [i.src] : [],
    base: 'dst',
  }),
  ja: () => ({ fields: [], reads: [], writes: [] }),
  jcond: (i, c) => ({ fields: c.srcReg ? [DST, SRC] : [DST], reads: c.srcReg ? [i.dst, i.src] : [i.dst], writes: [] }),
  call: () => ({ fields: [], reads: [], writes: [], clobbers: true }),
  // r10 holds a stack address, never a helper id.
  callx: (i) => ({ fields: [{ field: 'dst', max: 9 }], reads: [i.dst], writes: [], clobbers: true }),
  exit: () => ({ fields: [], reads: [0], writes: [] }),
};

interface Ctx {
  prog: Program;
  insns: readonly Insn[];
  n: number;
  starts: Uint8Array;
  /** Classification of each valid instruction start. */
  cls: (Classified | undefined)[];
  uses: (Use | undefined)[];
  /** Registers that exist (<= 10) in every field they appear in. */
  regsOk: boolean[];
  cfg: Cfg;
  opts: Required<StructuralOptions>;
  out: Diagnostic[];
}

export function verifyStructure(prog: Program, opts: StructuralOptions): void {
  const diagnostics = checkStructure(prog, opts);
  if (diagnostics.length > 0) throw new VerifyError(diagnostics);
}

/** Every structural problem of the program, in slot order (empty when it is valid). */
export function checkStructure(prog: Program, opts: StructuralOptions): Diagnostic[] {
  const insns = prog.insns;
  const n = insns.length;
  if (n === 0) {
    return [{ index: 0, disasm: '', rule: 'empty', message: 'the program has no instructions' }];
  }
  const starts = instructionStarts(insns);
  const ctx: Ctx = {
    prog, insns, n, starts,
    cls: [], uses: [], regsOk: [],
    cfg: buildCfg(prog),
    opts: {
      helpers: opts.helpers,
      maxInsns: opts.maxInsns ?? DEFAULT_MAX_INSNS,
      maxCallDepth: Math.max(1, opts.maxCallDepth ?? DEFAULT_MAX_CALL_DEPTH),
      stackSize: opts.stackSize ?? DEFAULT_STACK_SIZE,
    },
    out: [],
  };
  if (n > ctx.opts.maxInsns) {
    report(ctx, ctx.opts.maxInsns, 'size', `the program has ${n} slots, more than the limit of ${ctx.opts.maxInsns}`);
  }
  checkEntry(ctx);
  for (let i = 0; i < n; i++) {
    if (starts[i]) checkInsn(ctx, i);
  }
  checkRelocs(ctx);
  checkFallOff(ctx);
  checkCallGraph(ctx);
  checkUninit(ctx);
  // Stable: diagnostics of one slot keep the order the rules were checked in.
  return ctx.out.sort((a, b) => a.index - b.index);
}

function describe(ctx: Ctx, index: number): string {
  if (index < 0 || index >= ctx.n) return '(outside the program)';
  return ctx.starts[index] ? disasmInsn(ctx.insns, index) : rawForm(ctx.insns[index]);
}

function report(ctx: Ctx, index: number, rule: string, text: string): void {
  const disasm = describe(ctx, index);
  ctx.out.push({ index, disasm, rule, message: `instruction ${index} (${disasm}): ${text}` });
}

function slotRange(ctx: Ctx): string {
  return `slots 0..${ctx.n - 1}`;
}

function checkEntry(ctx: Ctx): void {
  const { entry } = ctx.prog;
  if (!Number.isInteger(entry) || entry < 0 || entry >= ctx.n) {
    ctx.out.push({
      index: 0, disasm: describe(ctx, 0), rule: 'entry',
      message: `the entry point ${entry} is outside the program (${slotRange(ctx)})`,
    });
  } else if (!ctx.starts[entry]) {
    report(ctx, entry, 'entry', `the entry point ${entry} is the second slot of an lddw`);
  }
}

function checkInsn(ctx: Ctx, i: number): void {
  const insn = ctx.insns[i];
  const c = classify(insn);
  if (isInvalid(c)) {
    report(ctx, i, 'opcode', `invalid instruction: ${c.error}`);
    return;
  }
  ctx.cls[i] = c;
  const use = USES[c.form](insn, c);
  ctx.uses[i] = use;

  let regsOk = true;
  for (const { field, max } of use.fields) {
    const r = insn[field];
    if (r <= max) continue;
    regsOk = false;
    const text = r > MAX_REG
      ? `register r${r} does not exist (${field}; registers are r0..r10)`
      : `${c.mnemonic} cannot use r${r} (${field} must be r0..r${max})`;
    report(ctx, i, 'register', text);
  }
  ctx.regsOk[i] = regsOk;
  if (regsOk && use.writes.includes(FP)) {
    report(ctx, i, 'r10-write', 'writes r10, the read-only frame pointer');
  }
  if (regsOk && use.base !== undefined && insn[use.base] === FP) checkStack(ctx, i, c.size ?? 8);

  if (c.form === 'lddw') checkLddw(ctx, i);
  checkTransfer(ctx, i, c);
}

function checkStack(ctx: Ctx, i: number, size: number): void {
  const { off } = ctx.insns[i];
  const frame = ctx.opts.stackSize;
  if (off >= -frame && off + size <= 0) return;
  const at = off < 0 ? `r10${off}` : `r10+${off}`;
  report(ctx, i, 'stack', `${size}-byte stack access at ${at} is outside the ${frame}-byte frame (r10-${frame} up to r10)`);
}

function checkLddw(ctx: Ctx, i: number): void {
  const insn = ctx.insns[i];
  if (i + 1 >= ctx.n) {
    report(ctx, i, 'lddw', 'lddw takes two slots but is in the last slot of the program');
  } else {
    const second = ctx.insns[i + 1];
    if (second.code !== 0 || second.dst !== 0 || second.src !== 0 || second.off !== 0) {
      report(ctx, i, 'lddw', `the second slot of lddw (slot ${i + 1}) must have code, dst, src and off 0 (is ${rawForm(second)})`);
    }
  }
  if (insn.src !== 0) {
    report(ctx, i, 'lddw-map', `map references (lddw src=${insn.src}, ${LDDW_SRC[insn.src]}) need a runtime with maps`);
  }
}

/** Where a target slot lands: fine, outside the program, or inside an lddw. */
function targetProblem(ctx: Ctx, t: number): string | undefined {
  if (t < 0 || t >= ctx.n) return `is outside the program (${slotRange(ctx)})`;
  if (!ctx.starts[t]) return `is the second slot of the lddw at slot ${t - 1}`;
  return undefined;
}

function checkTransfer(ctx: Ctx, i: number, c: Classified): void {
  const insn = ctx.insns[i];
  const jump = jumpTarget(insn, i, c);
  if (jump !== undefined) {
    const problem = targetProblem(ctx, jump);
    if (problem !== undefined) {
      report(ctx, i, ctx.starts[jump] === 0 && jump >= 0 && jump < ctx.n ? 'jump-into-lddw' : 'jump-range', `jump target ${jump} ${problem}`);
    } else if (ctx.cfg.fnOfSlot[jump] !== ctx.cfg.fnOfSlot[i]) {
      const to = ctx.cfg.functions[ctx.cfg.fnOfSlot[jump]];
      const from = ctx.cfg.functions[ctx.cfg.fnOfSlot[i]];
      report(ctx, i, 'jump-cross-function',
        `jump target ${jump} is in another function (slots ${to.start}..${to.end - 1}) than the jump (slots ${from.start}..${from.end - 1})`);
    }
  }
  const call = callTarget(insn, i, c);
  if (call !== undefined) {
    const problem = targetProblem(ctx, call);
    if (problem !== undefined) report(ctx, i, 'call-target', `call target ${call} ${problem}`);
  }
  if (c.form === 'call' && !c.local && !ctx.opts.helpers.has(insn.imm)) {
    const known = [...ctx.opts.helpers].sort((a, b) => a - b).join(', ');
    report(ctx, i, 'helper', `helper ${insn.imm} is not provided by the runtime (available: ${known === '' ? 'none' : known})`);
  }
}

function checkRelocs(ctx: Ctx): void {
  const { data, relocs } = ctx.prog;
  for (const r of relocs) {
    const section = data[r.section];
    const what = `relocation to data section ${section === undefined ? r.section : `${r.section} (${section.name})`}`;
    const at = ctx.insns[r.slot];
    if (at === undefined || !ctx.starts[r.slot]) {
      const index = at === undefined ? 0 : r.slot;
      ctx.out.push({
        index, disasm: describe(ctx, index), rule: 'reloc',
        message: `${what} is at slot ${r.slot}, which is not an instruction start (${slotRange(ctx)})`,
      });
      continue;
    }
    if (at.code !== LDDW || at.src !== 0) report(ctx, r.slot, 'reloc', `${what} must be at an lddw with src 0`);
    if (section === undefined) report(ctx, r.slot, 'reloc', `${what}: there are only ${data.length} data sections`);
  }
}

function checkFallOff(ctx: Ctx): void {
  const { cfg } = ctx;
  for (const b of cfg.blocks) {
    // An invalid last instruction is reported as such; whether it would fall through is moot.
    if (!b.reachable || !b.fallsOff || ctx.cls[b.last] === undefined) continue;
    const next = b.end;
    const text = next >= ctx.n
      ? 'execution can run past the end of the program (only ja and exit may end it)'
      : `execution can fall through into the function at slot ${next} (only ja and exit may end a function)`;
    report(ctx, b.last, 'fall-off', text);
  }
}

/** Local calls must not recurse, and the deepest chain may hold at most maxCallDepth frames. */
function checkCallGraph(ctx: Ctx): void {
  const { cfg } = ctx;
  if (cfg.entry < 0) return;
  const fns = cfg.functions;
  const calls = fns.map((f) => f.calls.filter((s) => cfg.blocks[cfg.blockOfSlot[s.slot]].reachable));
  const WHITE = 0, GREY = 1, BLACK = 2;
  const color = new Uint8Array(fns.length);
  const back = new Set<number>(); // call slots closing a cycle
  const post: number[] = [];
  const path: number[] = [cfg.entry];
  const next: number[] = [0];
  color[cfg.entry] = GREY;
  while (path.length > 0) {
    const f = path[path.length - 1];
    const k = next[next.length - 1]++;
    const site = calls[f][k];
    if (site === undefined) {
      color[f] = BLACK;
      post.push(f);
      path.pop();
      next.pop();
    } else if (color[site.callee] === GREY) {
      back.add(site.slot);
      const cycle = path.slice(path.indexOf(site.callee)).concat(site.callee).map((g) => fns[g].start);
      report(ctx, site.slot, 'call-depth', `recursive local call: functions at slots ${cycle.join(' -> ')} form a cycle`);
    } else if (color[site.callee] === WHITE) {
      color[site.callee] = GREY;
      path.push(site.callee);
      next.push(0);
    }
  }
  // Without the cycle-closing calls the graph is acyclic: longest chains in reverse postorder.
  const depth = new Int32Array(fns.length);
  const via = new Int32Array(fns.length).fill(-1);
  depth[cfg.entry] = 1;
  const max = ctx.opts.maxCallDepth;
  for (const f of post.reverse()) {
    for (const site of calls[f]) {
      if (back.has(site.slot)) continue;
      if (depth[f] + 1 > depth[site.callee]) {
        depth[site.callee] = depth[f] + 1;
        via[site.callee] = f;
      }
      // Report only where a chain first exceeds the limit, not every call below that point.
      if (depth[f] === max) {
        const chain: number[] = [site.callee];
        for (let g = f; g >= 0; g = via[g]) chain.unshift(g);
        report(ctx, site.slot, 'call-depth',
          `local calls nest ${max + 1} frames deep (functions at slots ${chain.map((g) => fns[g].start).join(' -> ')}), more than the limit of ${max}`);
      }
    }
  }
}

/** Must-initialised registers: forward dataflow over reachable blocks, meet = intersection. */
function checkUninit(ctx: Ctx): void {
  const { cfg } = ctx;
  const blocks = cfg.blocks;
  const entryState = new Int32Array(blocks.length).fill(ALL_REGS);
  for (const f of cfg.functions) {
    if (f.reachable) entryState[f.entry] = f.id === cfg.entry ? ENTRY_INIT : CALLEE_INIT;
  }
  const outState = new Int32Array(blocks.length).fill(ALL_REGS);
  const inState = (id: number): number => {
    let s = entryState[id];
    for (const p of blocks[id].preds) if (blocks[p].reachable) s &= outState[p];
    return s;
  };
  const work = blocks.filter((b) => b.reachable).map((b) => b.id).reverse();
  const queued = new Uint8Array(blocks.length);
  for (const id of work) queued[id] = 1;
  for (let id = work.pop(); id !== undefined; id = work.pop()) {
    queued[id] = 0;
    const out = runBlock(ctx, id, inState(id), false);
    if (out === outState[id]) continue;
    outState[id] = out;
    for (const s of blocks[id].succs) {
      if (!queued[s] && blocks[s].reachable) { queued[s] = 1; work.push(s); }
    }
  }
  for (const b of blocks) if (b.reachable) runBlock(ctx, b.id, inState(b.id), true);
}

function runBlock(ctx: Ctx, id: number, state: number, reportReads: boolean): number {
  const b = ctx.cfg.blocks[id];
  for (let i = b.start; i < b.end && i < ctx.n; i++) {
    if (!ctx.starts[i]) continue;
    const use = ctx.uses[i];
    if (use === undefined || !ctx.regsOk[i]) {
      // Already rejected; assuming it sets every register keeps its readers from reporting too.
      state = ALL_REGS;
      continue;
    }
    if (reportReads) {
      const missing = [...new Set(use.reads)].filter((r) => (state & bit(r)) === 0).sort((x, y) => x - y);
      if (missing.length > 0) {
        const names = missing.map((r) => `r${r}`).join(' and ');
        const verb = missing.length > 1 ? 'are' : 'is';
        report(ctx, i, 'uninit', `reads ${names}, which ${verb} not initialised on every path to this instruction`);
      }
    }
    for (const r of use.writes) state |= bit(r);
    if (use.clobbers) state = (state & ~ARG_REGS) | bit(0);
  }
  return state;
}
