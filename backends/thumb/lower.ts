// IR -> ARMv7-M Thumb-2, one pass over each function's blocks in order (Liftoff-style): every IR
// instruction becomes a short fixed sequence over the register halves' homes (regalloc.ts), with
// slow paths and fault calls moved after the function. The code is position independent: data
// addresses come from the run state's region table, runtime routines from its function pointers.
// The image entry is at offset 0; abi.ts and IMAGE.md give the contract with the device runtime.
import type { Block, Inst, IrModule, Terminator } from '../../compiler/ir/ir.js';
import type { ProgramFacts } from '../../compiler/verify/facts.js';
import { MAX_REGIONS, OFF } from './abi.js';
import type { Label } from './asm-buffer.js';
import type { DataRange } from './disasm.js';
import { lowerBin, lowerBswap, lowerCompare, lowerConst, lowerExt, lowerMov, lowerNeg } from './alu64.js';
import { emitCalleeEntry, emitShared, lowerHelperCall, lowerLocalCall, sharedLabels, type SharedLabels } from './calls.js';
import {
  emitLookup, lowerAtomic, lowerLoad, lowerStore, regionLayout, RegionGuess, regionsByName,
  type AccessContext, type RegionInfo,
} from './checks.js';
import * as E from './encode.js';
import { dpImmOr, ldrState, strState, Emitter, LoweringError } from './emitter.js';
import { allocate, type Allocation } from './regalloc.js';

export interface CodeMark {
  offset: number;
  pc: number;
  /** Function index, block id and instruction index ('t' = terminator) of the IR it came from. */
  where: string;
}

export interface LoweredModule {
  code: Uint8Array;
  /** Byte ranges of code holding data (none today; kept for listings). */
  data: DataRange[];
  /** Offset of the image entry (always 0). */
  entry: number;
  /** Return addresses of fault-reporting calls (offset of the instruction after the `bl`) -> eBPF pc, sorted. */
  sites: Array<{ offset: number; pc: number }>;
  /** Where each IR instruction's code starts, in code order. */
  marks: CodeMark[];
  /** Offset of each function's body. */
  functions: number[];
  regions: RegionInfo[];
  alloc: Allocation;
}

export { LoweringError } from './emitter.js';

interface FunctionLabels {
  callEntry: Label;
  body: Label;
}

/** `facts`: the verifier's facts the IR was built with, for offset ranges the IR does not carry. */
export function lowerModule(m: IrModule, facts?: ProgramFacts): LoweredModule {
  if (m.functions.length === 0) throw new LoweringError(`${m.origin}: the module has no functions`);
  if (m.data.length > MAX_REGIONS - 2) {
    throw new LoweringError(`${m.origin}: ${m.data.length} data sections; the device runtime holds at most ${MAX_REGIONS - 2}`);
  }
  // Temporaries live per activation in the IR's semantics, but in one register file here: refuse
  // the combination rather than let a callee clobber a caller's temporary.
  const temps = m.functions.some((f) => f.maxReg > 10);
  const calls = m.functions.some((f) => f.blocks.some((b) => b.insts.some((i) => i.op === 'calllocal')));
  if (temps && calls) throw new LoweringError(`${m.origin}: IR temporaries (registers above r10) together with local calls are not supported`);
  const alloc = allocate(m);
  const e = new Emitter(alloc);
  const L = sharedLabels(e);
  const regions = regionLayout(m.data);
  const ctx: AccessContext = { regions, byName: regionsByName(regions), L, facts };
  const fl: FunctionLabels[] = m.functions.map((f, i) => ({ callEntry: e.buf.label(`f${i}_call`), body: e.buf.label(`f${i}_${f.name}`) }));
  emitShared(e, L, fl[0].body);
  emitLookup(e, L);
  m.functions.forEach((f, fi) => {
    e.buf.bind(fl[fi].callEntry);
    emitCalleeEntry(e);
    e.buf.bind(fl[fi].body);
    const guess = new RegionGuess(f, fi === 0, regions, alloc.nregs);
    const labels = f.blocks.map((b) => e.buf.label(`f${fi}_b${b.id}`));
    f.blocks.forEach((b: Block, bi) => {
      if (b.id !== bi) throw new LoweringError(`${m.origin}: function ${f.name}: block ${bi} has id ${b.id}`);
      e.buf.bind(labels[bi]);
      const s = guess.at(bi);
      b.insts.forEach((inst, ii) => {
        e.mark(inst.pc, `f${fi}.b${bi}.${ii}`);
        lowerInst(e, ctx, m, inst, s, fl, L);
        guess.transfer(s, inst);
        e.release();
      });
      e.mark(b.term.pc, `f${fi}.b${bi}.t`);
      lowerTerm(e, b.term, bi + 1 < f.blocks.length ? bi + 1 : undefined, labels, L, f.blocks.length);
      e.release();
    });
    e.flushCold();
  });
  const asm = e.buf.finish();
  return {
    code: asm.bytes,
    data: asm.data,
    entry: asm.offsetOf(L.entry),
    sites: e.sites.map((s) => ({ offset: asm.offsetOf(s.label), pc: s.pc })).sort((a, b) => a.offset - b.offset),
    marks: e.marks.map((mk) => ({ offset: asm.offsetOf(mk.label), pc: mk.pc, where: mk.what })),
    functions: fl.map((l) => asm.offsetOf(l.body)),
    regions,
    alloc,
  };
}

function lowerInst(e: Emitter, ctx: AccessContext, m: IrModule, inst: Inst, guess: Int16Array, fl: FunctionLabels[], L: SharedLabels): void {
  const g = (reg: number): number => (reg < guess.length ? guess[reg] : -1);
  switch (inst.op) {
    case 'const':
      lowerConst(e, inst.dst, inst.lo, inst.hi, inst.hiDead);
      return;
    case 'addr': {
      const r = ctx.regions[1 + inst.section];
      if (inst.section < 0 || inst.section >= m.data.length || r === undefined) {
        throw new LoweringError(`instruction ${inst.pc}: data section ${inst.section} does not exist`);
      }
      const v = r.vbase + inst.offset;
      lowerConst(e, inst.dst, v | 0, Math.floor(v / 0x1_0000_0000) | 0, inst.hiDead);
      return;
    }
    case 'mov':
      lowerMov(e, inst);
      return;
    case 'bin':
      lowerBin(e, inst);
      return;
    case 'neg':
      lowerNeg(e, inst);
      return;
    case 'ext':
      lowerExt(e, inst);
      return;
    case 'bswap':
      lowerBswap(e, inst);
      return;
    case 'load':
      lowerLoad(e, ctx, inst, g(inst.base));
      return;
    case 'store':
      lowerStore(e, ctx, inst, g(inst.base));
      return;
    case 'atomic':
      lowerAtomic(e, ctx, inst, g(inst.base));
      return;
    case 'call':
    case 'callx':
      lowerHelperCall(e, inst, L);
      return;
    case 'calllocal': {
      const target = fl[inst.func];
      if (target === undefined) throw new LoweringError(`instruction ${inst.pc}: local call to function ${inst.func}, which does not exist`);
      lowerLocalCall(e, inst, target.callEntry, L);
      return;
    }
    case 'budget':
      lowerBudget(e, inst.pc, inst.cost, L);
      return;
  }
}

function lowerBudget(e: Emitter, pc: number, cost: number, L: SharedLabels): void {
  const t = e.take(12);
  ldrState(e, t, OFF.BUDGET);
  dpImmOr(e, 'sub', true, t, t, cost);
  const fail = e.buf.label(`budget_fail_${pc}`);
  e.buf.bcond('lo', fail);
  strState(e, t, OFF.BUDGET);
  e.addCold(() => {
    e.buf.bind(fail);
    e.blSite(L.faultBudget, pc);
  });
}

function lowerTerm(e: Emitter, t: Terminator, next: number | undefined, labels: Label[], L: SharedLabels, nblocks: number): void {
  const target = (id: number): Label => {
    const l = labels[id];
    if (l === undefined || id < 0 || id >= nblocks) throw new LoweringError(`instruction ${t.pc}: branch to block ${id}, which does not exist`);
    return l;
  };
  switch (t.op) {
    case 'jump':
      if (t.target !== next) e.buf.b(target(t.target));
      return;
    case 'br': {
      if (t.then === t.else) {
        if (t.then !== next) e.buf.b(target(t.then));
        return;
      }
      const cond = lowerCompare(e, t);
      if (t.then === next) {
        e.buf.bcond(E.invertCond(cond), target(t.else));
        return;
      }
      e.buf.bcond(cond, target(t.then));
      if (t.else !== next) e.buf.b(target(t.else));
      return;
    }
    case 'ret':
      e.buf.b(L.retCommon);
      return;
    case 'fault':
      e.blSite(t.kind === 'permission' ? L.faultPerm : L.faultOob, t.pc);
      return;
  }
}
