// Copies of the object IR, for callers that change a module without touching the original. The
// passes themselves share passes/flow.ts and work on the record form (flat.ts).
import type { Access, Block, Inst, IrFunction, IrModule, Operand, Terminator } from '../ir.js';

/** A pure pass: returns a new module, the input is untouched. */
export type Pass = (m: IrModule) => IrModule;

const cloneOperand = (o: Operand): Operand => ('reg' in o ? { reg: o.reg } : { imm: o.imm });
const cloneAccess = (a: Access): Access => ({ verdict: a.verdict, region: a.region, coveredBy: a.coveredBy });

/**
 * A copy of an instruction that shares nothing with it, built field by field so that every copy of
 * one operation has one shape (property access stays fast). A definition's copy always has a
 * `hiDead` property (undefined when unmarked): marking it later assigns instead of adding a property.
 */
export function cloneInst(i: Inst): Inst {
  switch (i.op) {
    case 'const': return { op: 'const', pc: i.pc, dst: i.dst, hiDead: i.hiDead, lo: i.lo, hi: i.hi };
    case 'addr': return { op: 'addr', pc: i.pc, dst: i.dst, hiDead: i.hiDead, section: i.section, offset: i.offset };
    case 'mov': return { op: 'mov', pc: i.pc, dst: i.dst, hiDead: i.hiDead, w: i.w, src: i.src };
    case 'bin': return { op: 'bin', pc: i.pc, dst: i.dst, hiDead: i.hiDead, bin: i.bin, w: i.w, a: i.a, b: cloneOperand(i.b) };
    case 'neg': return { op: 'neg', pc: i.pc, dst: i.dst, hiDead: i.hiDead, w: i.w, src: i.src };
    case 'ext': return { op: 'ext', pc: i.pc, dst: i.dst, hiDead: i.hiDead, signed: i.signed, bits: i.bits, w: i.w, src: i.src };
    case 'bswap': return { op: 'bswap', pc: i.pc, dst: i.dst, hiDead: i.hiDead, bits: i.bits, src: i.src };
    case 'load':
      return { op: 'load', pc: i.pc, dst: i.dst, hiDead: i.hiDead, size: i.size, signed: i.signed, base: i.base, off: i.off, access: cloneAccess(i.access) };
    case 'store':
      return { op: 'store', pc: i.pc, size: i.size, base: i.base, off: i.off, value: cloneOperand(i.value), access: cloneAccess(i.access) };
    case 'atomic':
      return { op: 'atomic', pc: i.pc, aop: i.aop, size: i.size, fetch: i.fetch, base: i.base, off: i.off, src: i.src, access: cloneAccess(i.access) };
    case 'call': return { op: 'call', pc: i.pc, id: i.id };
    case 'callx': return { op: 'callx', pc: i.pc, reg: i.reg };
    case 'calllocal': return { op: 'calllocal', pc: i.pc, func: i.func };
    case 'budget': return { op: 'budget', pc: i.pc, cost: i.cost };
  }
}

export function cloneTerm(t: Terminator): Terminator {
  switch (t.op) {
    case 'jump': return { op: 'jump', pc: t.pc, target: t.target };
    case 'br': return { op: 'br', pc: t.pc, cond: t.cond, w: t.w, a: t.a, b: cloneOperand(t.b), then: t.then, else: t.else };
    case 'ret': return { op: 'ret', pc: t.pc };
    case 'fault': return { op: 'fault', pc: t.pc, kind: t.kind };
  }
}

/** A deep copy of the functions (data sections are shared: passes never change them). */
export function cloneModule(m: IrModule): IrModule {
  return {
    ...m,
    helpers: [...m.helpers],
    functions: m.functions.map((f) => ({
      ...f,
      blocks: f.blocks.map((b): Block => ({ id: b.id, insts: b.insts.map(cloneInst), term: cloneTerm(b.term) })),
    })),
  };
}

/** Applies `fn` to a fresh copy of every function. */
export function mapFunctions(m: IrModule, fn: (f: IrFunction, m: IrModule) => void): IrModule {
  const out = cloneModule(m);
  for (const f of out.functions) fn(f, out);
  return out;
}
