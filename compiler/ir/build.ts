// eBPF -> IR: one IrFunction per reachable function of the CFG (the entry first, then the others in
// slot order), one IR block per reachable CFG block, every instruction lowered one to one with its
// slot as `pc`. The verifier's facts become access verdicts and the set of loops that need no
// budget; without facts every access is checked and every loop is budgeted.
// Precondition: the program passed verifyStructure (so every slot decodes, targets are valid and no
// reachable path runs off a function). A violated precondition is an IrBuildError, not a crash.
import { buildCfg, callTarget, jumpTarget, type Cfg, type Block as CfgBlock } from '../verify/cfg.js';
import type { AccessFact, ProgramFacts } from '../verify/facts.js';
import { classify, isInvalid, type Classified, type Insn } from '../opcodes.js';
import type { DataReloc, Program } from '../program.js';
import { BIN_OF_ALU, COND_OF_JMP, type Access, type Block, type Inst, type IrFunction, type IrModule, type Operand, type Terminator } from './ir.js';

/** The program breaks a precondition of the builder (it did not pass the structural verifier). */
export class IrBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IrBuildError';
  }
}

interface Ctx {
  prog: Program;
  cfg: Cfg;
  facts: ProgramFacts | undefined;
  /** CFG function index -> IR function index. */
  irFn: Map<number, number>;
  helpers: Set<number>;
  /** lddw slot -> its data relocation. */
  relocs: Map<number, DataReloc>;
}

export function buildIr(program: Program, facts?: ProgramFacts): IrModule {
  const cfg = buildCfg(program);
  if (cfg.entry < 0) throw new IrBuildError(`${program.origin}: the entry point ${program.entry} is not an instruction start`);
  const order = [cfg.entry, ...cfg.functions.filter((f) => f.reachable && f.id !== cfg.entry).map((f) => f.id)];
  const ctx: Ctx = {
    prog: program, cfg, facts, irFn: new Map(order.map((f, i) => [f, i])), helpers: new Set(),
    relocs: new Map(),
  };
  // The first relocation of a slot wins.
  for (const r of program.relocs) if (!ctx.relocs.has(r.slot)) ctx.relocs.set(r.slot, r);
  const functions = order.map((f) => buildFunction(ctx, f));
  return {
    functions,
    data: program.data,
    helpers: [...ctx.helpers].sort((a, b) => a - b),
    origin: program.origin,
  };
}

function fail(ctx: Ctx, slot: number, what: string): never {
  throw new IrBuildError(`${ctx.prog.origin}: instruction ${slot}: ${what} (the program must pass the structural verifier first)`);
}

function functionName(prog: Program, start: number, isEntry: boolean): string {
  const sym = prog.functions.find((f) => f.start === start);
  if (sym !== undefined) return sym.name;
  return isEntry ? 'main' : `fn_${start}`;
}

function buildFunction(ctx: Ctx, fnIndex: number): IrFunction {
  const { cfg } = ctx;
  const f = cfg.functions[fnIndex];
  const cfgBlocks = f.blocks.map((id) => cfg.blocks[id]).filter((b) => b.reachable);
  // f.blocks is in slot order and the function's first block is its entry, so it lands at index 0.
  // CFG block id -> IR block index (-1: not in this function or unreachable).
  const local = new Int32Array(cfg.blocks.length).fill(-1);
  cfgBlocks.forEach((b, i) => { local[b.id] = i; });
  const budgeted = budgetedBlocks(ctx, cfgBlocks);
  const blocks = cfgBlocks.map((b, i) => buildBlock(ctx, b, i, local, budgeted.has(b.id)));
  return { name: functionName(ctx.prog, f.start, fnIndex === cfg.entry), start: f.start, blocks, maxReg: 10 };
}

/**
 * Blocks that belong to a loop closed by a back edge not proven bounded. A back edge is a jump to a
 * slot at or before the jump itself: fall-through and forward jumps only raise the slot, so every
 * cycle contains one. Its loop is the target block plus every block between target and jump (in slot
 * order) that reaches the jump's block without passing through the target.
 */
function budgetedBlocks(ctx: Ctx, blocks: readonly CfgBlock[]): Set<number> {
  const { cfg, facts } = ctx;
  const out = new Set<number>();
  const inFn = new Set(blocks.map((b) => b.id));
  for (const u of blocks) {
    for (const s of u.succs) {
      const v = cfg.blocks[s];
      if (v.start > u.last) continue;
      if (facts?.boundedBackEdges.has(u.last)) continue;
      const body = new Set<number>([v.id]);
      const work = [u.id];
      while (work.length > 0) {
        const w = work.pop() as number;
        if (body.has(w)) continue;
        body.add(w);
        for (const p of cfg.blocks[w].preds) {
          const pb = cfg.blocks[p];
          if (inFn.has(p) && pb.start >= v.start && pb.start <= u.start && !body.has(p)) work.push(p);
        }
      }
      for (const b of body) out.add(b);
    }
  }
  return out;
}

function accessOf(ctx: Ctx, slot: number): Access {
  const fact: AccessFact | undefined = ctx.facts?.access.get(slot);
  // 'fault' is not expected (the verifier rejects such programs); a runtime check faults the same way.
  if (fact === undefined || fact.verdict === 'fault') return fact?.region === undefined ? { verdict: 'check' } : { verdict: 'check', region: fact.region };
  return fact.region === undefined ? { verdict: fact.verdict } : { verdict: fact.verdict, region: fact.region };
}

function buildBlock(ctx: Ctx, b: CfgBlock, id: number, local: Int32Array, budget: boolean): Block {
  const { insns } = ctx.prog;
  const insts: Inst[] = [];
  let term: Terminator | undefined;
  let count = 0;
  const blockAt = (slot: number): number => {
    const t = slot >= 0 && slot < insns.length ? local[ctx.cfg.blockOfSlot[slot]] : -1;
    if (t === undefined || t < 0) fail(ctx, slot, `target slot ${slot} is not in a reachable block of the function`);
    return t;
  };
  // The charge comes first; its cost (the block's instruction count) is filled in at the end.
  const charge: Inst & { op: 'budget' } = { op: 'budget', pc: b.start, cost: 0 };
  if (budget) insts.push(charge);
  for (let i = b.start; i <= b.last; i += insns[i].code === 0x18 ? 2 : 1) {
    count++;
    const insn = insns[i];
    const c = classify(insn);
    if (isInvalid(c)) fail(ctx, i, `invalid instruction: ${c.error}`);
    const next = i + (c.form === 'lddw' ? 2 : 1);
    switch (c.form) {
      case 'exit':
        term = { op: 'ret', pc: i };
        break;
      case 'ja':
        term = { op: 'jump', pc: i, target: blockAt(jumpTarget(insn, i, c) as number) };
        break;
      case 'jcond':
        term = {
          op: 'br', pc: i, cond: COND_OF_JMP[c.jmp ?? 'jeq'], w: c.wide ? 64 : 32, a: insn.dst, b: operand(insn, c),
          then: blockAt(jumpTarget(insn, i, c) as number), else: blockAt(next),
        };
        break;
      default:
        insts.push(lower(ctx, insn, i, c));
    }
    if (term !== undefined && i !== b.last) fail(ctx, i, 'a block ends in the middle');
  }
  if (term === undefined) {
    if (b.fallsOff || b.succs.length === 0) fail(ctx, b.last, 'execution can run off the end of the function');
    term = { op: 'jump', pc: b.last, target: blockAt(b.end) };
  }
  charge.cost = count;
  return { id, insts, term };
}

function operand(insn: Insn, c: Classified): Operand {
  return c.srcReg ? { reg: insn.src } : { imm: insn.imm };
}

function lower(ctx: Ctx, insn: Insn, pc: number, c: Classified): Inst {
  const dst = insn.dst;
  const w = c.wide ? 64 : 32;
  switch (c.form) {
    case 'alu': {
      if (c.alu === 'mov') {
        if (c.srcReg) return { op: 'mov', pc, dst, w, src: insn.src };
        return { op: 'const', pc, dst, lo: insn.imm | 0, hi: c.wide ? insn.imm >> 31 : 0 };
      }
      if (c.alu === 'movsx') {
        return { op: 'ext', pc, dst, signed: true, bits: c.signExtend as 8 | 16 | 32, w, src: insn.src };
      }
      const bin = BIN_OF_ALU[c.alu ?? 'add'];
      if (bin === undefined) fail(ctx, pc, `no IR operation for ${c.mnemonic}`);
      return { op: 'bin', pc, dst, bin, w, a: dst, b: operand(insn, c) };
    }
    case 'neg':
      return { op: 'neg', pc, dst, w, src: dst };
    case 'end': {
      const bits = insn.imm as 16 | 32 | 64;
      if (c.end !== 'le') return { op: 'bswap', pc, dst, bits, src: dst };
      // Little-endian host order: le only truncates to the width (zero-extending), le64 does nothing.
      if (bits === 64) return { op: 'mov', pc, dst, w: 64, src: dst };
      return { op: 'ext', pc, dst, signed: false, bits, w: 64, src: dst };
    }
    case 'lddw': {
      const reloc = ctx.relocs.get(pc);
      if (reloc !== undefined) return { op: 'addr', pc, dst, section: reloc.section, offset: reloc.addend };
      const second = ctx.prog.insns[pc + 1];
      if (second === undefined) fail(ctx, pc, 'lddw needs a second slot');
      return { op: 'const', pc, dst, lo: insn.imm | 0, hi: second.imm | 0 };
    }
    case 'ldx':
      return { op: 'load', pc, dst, size: c.size ?? 8, signed: c.signExtend !== undefined, base: insn.src, off: insn.off, access: accessOf(ctx, pc) };
    case 'st':
      return { op: 'store', pc, size: c.size ?? 8, base: dst, off: insn.off, value: { imm: insn.imm }, access: accessOf(ctx, pc) };
    case 'stx':
      return { op: 'store', pc, size: c.size ?? 8, base: dst, off: insn.off, value: { reg: insn.src }, access: accessOf(ctx, pc) };
    case 'atomic':
      return {
        op: 'atomic', pc, aop: c.atomic ?? 'add', size: c.size === 4 ? 4 : 8, fetch: c.fetch === true,
        base: dst, off: insn.off, src: insn.src, access: accessOf(ctx, pc),
      };
    case 'call': {
      if (!c.local) {
        ctx.helpers.add(insn.imm);
        return { op: 'call', pc, id: insn.imm };
      }
      const target = callTarget(insn, pc, c) as number;
      const fn = ctx.irFn.get(ctx.cfg.fnOfSlot[target] ?? -1);
      if (fn === undefined || ctx.cfg.functions[ctx.cfg.fnOfSlot[target]].start !== target) fail(ctx, pc, `local call target ${target} does not start a function`);
      return { op: 'calllocal', pc, func: fn };
    }
    case 'callx':
      return { op: 'callx', pc, reg: dst };
    default:
      return fail(ctx, pc, `unexpected ${c.form} inside a block`);
  }
}
