// The IR's well-formedness rules, checked between passes (pipeline debug mode) and in tests, so a
// pass that breaks the contract is caught where it happens rather than in a back end.
// Every block is checked, reachable or not; the result lists every problem, empty when valid.
import type { Access, Inst, IrFunction, IrModule, Operand, Reg, Terminator } from './ir.js';
import { instText, termText } from './text.js';

const BIN_OPS = new Set(['add', 'sub', 'mul', 'udiv', 'sdiv', 'urem', 'srem', 'and', 'or', 'xor', 'shl', 'lshr', 'ashr']);
const CONDS = new Set(['eq', 'ne', 'ugt', 'uge', 'ult', 'ule', 'sgt', 'sge', 'slt', 'sle', 'set']);
const ATOMIC_OPS = new Set(['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg']);
const DEF_OPS = new Set(['const', 'addr', 'mov', 'bin', 'neg', 'ext', 'bswap', 'load']);
const FP = 10;

const isInt32 = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;
const isNat = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;

class Checker {
  readonly out: string[] = [];
  private where = '';
  constructor(readonly m: IrModule) {}

  at(where: string): void {
    this.where = where;
  }

  err(msg: string): void {
    this.out.push(`${this.where}: ${msg}`);
  }

  reg(f: IrFunction, r: Reg, what: string, written = false): void {
    if (!isNat(r) || r > f.maxReg) this.err(`${what} register r${r} is outside r0..r${f.maxReg}`);
    else if (written && r === FP) this.err(`${what} writes r10, the read-only frame pointer`);
  }

  operand(f: IrFunction, o: Operand, what: string): void {
    if ('reg' in o) this.reg(f, o.reg, what);
    else if (!isInt32(o.imm)) this.err(`${what} immediate ${o.imm} is not an int32`);
  }

  access(a: Access): void {
    if (a.verdict !== 'proven' && a.verdict !== 'check') this.err(`access verdict must be 'proven' or 'check' (is '${String(a.verdict)}')`);
    if (a.region !== undefined && typeof a.region !== 'string') this.err('access region must be a name');
    if (a.coveredBy !== undefined && (!isNat(a.coveredBy) || a.verdict !== 'proven')) this.err('coveredBy must be a pc on a proven access');
  }

  mem(f: IrFunction, base: Reg, off: number): void {
    this.reg(f, base, 'base');
    if (!isInt32(off)) this.err(`offset ${off} is not an int32`);
  }

  inst(f: IrFunction, i: Inst): void {
    if (!isNat(i.pc)) this.err(`pc ${i.pc} is not a slot number`);
    if ('hiDead' in i && i.hiDead !== undefined && !DEF_OPS.has(i.op)) this.err(`hiDead on ${i.op}, which defines no register`);
    if ('dst' in i) this.reg(f, i.dst, 'destination', true);
    switch (i.op) {
      case 'const':
        if (!isInt32(i.lo) || !isInt32(i.hi)) this.err('const halves must be int32 bit patterns');
        break;
      case 'addr':
        if (!isNat(i.section) || i.section >= this.m.data.length) this.err(`data section ${i.section} does not exist (the module has ${this.m.data.length})`);
        if (!Number.isInteger(i.offset)) this.err(`addr offset ${i.offset} is not an integer`);
        break;
      case 'mov': case 'neg':
        this.width(i.w);
        this.reg(f, i.src, 'source');
        break;
      case 'bin':
        if (!BIN_OPS.has(i.bin)) this.err(`unknown binary operation '${i.bin}'`);
        this.width(i.w);
        this.reg(f, i.a, 'first operand');
        this.operand(f, i.b, 'second operand');
        break;
      case 'ext':
        this.width(i.w);
        if (![8, 16, 32].includes(i.bits) || i.bits >= i.w) this.err(`ext of ${i.bits} bits to ${i.w} bits (bits must be 8, 16 or 32 and below the width)`);
        this.reg(f, i.src, 'source');
        break;
      case 'bswap':
        if (![16, 32, 64].includes(i.bits)) this.err(`bswap width ${i.bits} (must be 16, 32 or 64)`);
        this.reg(f, i.src, 'source');
        break;
      case 'load':
        if (![1, 2, 4, 8].includes(i.size)) this.err(`load size ${i.size}`);
        if (i.signed && i.size === 8) this.err('a signed load of 8 bytes has nothing to extend');
        this.mem(f, i.base, i.off);
        this.access(i.access);
        break;
      case 'store':
        if (![1, 2, 4, 8].includes(i.size)) this.err(`store size ${i.size}`);
        this.mem(f, i.base, i.off);
        this.operand(f, i.value, 'stored');
        this.access(i.access);
        break;
      case 'atomic':
        if (!ATOMIC_OPS.has(i.aop)) this.err(`unknown atomic operation '${i.aop}'`);
        if (i.size !== 4 && i.size !== 8) this.err(`atomic size ${i.size} (must be 4 or 8)`);
        if ((i.aop === 'xchg' || i.aop === 'cmpxchg') && !i.fetch) this.err(`${i.aop} always fetches`);
        this.mem(f, i.base, i.off);
        this.reg(f, i.src, 'source', i.fetch && i.aop !== 'cmpxchg');
        this.access(i.access);
        break;
      case 'call':
        if (!isInt32(i.id)) this.err(`helper id ${i.id} is not an int32`);
        else if (!this.m.helpers.includes(i.id)) this.err(`helper ${i.id} is missing from the module's helper list`);
        break;
      case 'callx':
        this.reg(f, i.reg, 'helper id');
        break;
      case 'calllocal':
        if (!isNat(i.func) || i.func >= this.m.functions.length) this.err(`function ${i.func} does not exist (the module has ${this.m.functions.length})`);
        else if (i.func === 0) this.err('calllocal of the entry function');
        break;
      case 'budget':
        if (!isNat(i.cost) || i.cost === 0) this.err(`budget cost ${i.cost} must be a positive integer`);
        break;
      default:
        this.err(`unknown operation '${(i as { op: string }).op}'`);
    }
  }

  width(w: number): void {
    if (w !== 32 && w !== 64) this.err(`width ${w} (must be 32 or 64)`);
  }

  target(f: IrFunction, t: number): void {
    if (!isNat(t) || t >= f.blocks.length) this.err(`target b${t} does not exist (the function has ${f.blocks.length} blocks)`);
  }

  term(f: IrFunction, t: Terminator): void {
    if (!isNat(t.pc)) this.err(`pc ${t.pc} is not a slot number`);
    switch (t.op) {
      case 'jump': this.target(f, t.target); break;
      case 'br':
        if (!CONDS.has(t.cond)) this.err(`unknown condition '${t.cond}'`);
        this.width(t.w);
        this.reg(f, t.a, 'first operand');
        this.operand(f, t.b, 'second operand');
        this.target(f, t.then);
        this.target(f, t.else);
        break;
      case 'ret': break;
      case 'fault':
        if (t.kind !== 'out-of-bounds' && t.kind !== 'permission') this.err(`fault kind '${t.kind}'`);
        break;
      default:
        this.err(`unknown terminator '${(t as { op: string }).op}'`);
    }
  }
}

function safeText(print: () => string): string {
  try {
    return print();
  } catch {
    return '?';
  }
}

export function validateIr(m: IrModule): string[] {
  const c = new Checker(m);
  c.at('module');
  if (m.functions.length === 0) c.err('no functions (functions[0] must be the entry)');
  if (!m.helpers.every(isInt32)) c.err('helper ids must be int32');
  m.functions.forEach((f, fi) => {
    c.at(`function ${fi} (${f.name})`);
    if (!isNat(f.start)) c.err(`start ${f.start} is not a slot number`);
    if (!isNat(f.maxReg) || f.maxReg < FP) c.err(`maxReg ${f.maxReg} must be at least 10`);
    if (f.blocks.length === 0) c.err('no blocks (blocks[0] must be the entry)');
    f.blocks.forEach((b, bi) => {
      c.at(`function ${fi} (${f.name}) b${bi}`);
      if (b.id !== bi) c.err(`block id ${b.id} does not match its index ${bi}`);
      b.insts.forEach((i, k) => {
        c.at(`function ${fi} (${f.name}) b${bi} instruction ${k} (${safeText(() => instText(i))})`);
        c.inst(f, i);
      });
      c.at(`function ${fi} (${f.name}) b${bi} terminator (${safeText(() => termText(b.term))})`);
      if (b.term === undefined) c.err('missing terminator');
      else c.term(f, b.term);
    });
  });
  return c.out;
}
