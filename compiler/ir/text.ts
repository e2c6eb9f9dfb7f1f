// The IR's text form, for listings, filetests and debugging (in the spirit of Cranelift and QBE):
//
//   origin "add.data"
//   helpers 5
//   data ".rodata" ro 0102ff
//   function main (start 0) {
//   b0:
//     budget 12                     ; @6
//     r0 = const 0x0                ; @0
//     r2.lo = lshr.64 r2, 1         ; @3     (".lo": hiDead, only the low half matters)
//     r5 = load.u8 r1+1 [check mem] ; @6
//     store.32 r10-8, r5 [proven stack] ; @7
//     br.ult.32 r2, 2, b5, b1       ; @1
//   }
//
// `; @N` is the instruction's pc and is part of the syntax; any other `;` text is a comment.
// printIr(parseIr(printIr(m))) === printIr(m) for every module; parse errors name the line.
import type { DataSection } from '../program.js';
import type { AtomicOp } from '../opcodes.js';
import type { Access, BinOp, Block, Cond, Inst, IrFunction, IrModule, Operand, Reg, Terminator, Width } from './ir.js';

export class IrParseError extends Error {
  readonly line: number;
  constructor(line: number, detail: string) {
    super(`line ${line}: ${detail}`);
    this.name = 'IrParseError';
    this.line = line;
  }
}

const BIN_OPS: ReadonlySet<string> = new Set<BinOp>(['add', 'sub', 'mul', 'udiv', 'sdiv', 'urem', 'srem', 'and', 'or', 'xor', 'shl', 'lshr', 'ashr']);
const CONDS: ReadonlySet<string> = new Set<Cond>(['eq', 'ne', 'ugt', 'uge', 'ult', 'ule', 'sgt', 'sge', 'slt', 'sle', 'set']);
const ATOMIC_OPS: ReadonlySet<string> = new Set<AtomicOp>(['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg']);
/** Atomic operations that always return the old value. */
const ALWAYS_FETCH: ReadonlySet<string> = new Set(['xchg', 'cmpxchg']);
const COMMENT_COLUMN = 32;
const NAME_RE = /^[A-Za-z_][\w.$]*$/;

// ------------------------------------------------------------------------------------- printing

const reg = (r: Reg): string => `r${r}`;
const opnd = (o: Operand): string => ('reg' in o ? reg(o.reg) : `${o.imm}`);
const memRef = (base: Reg, off: number): string => `${reg(base)}${off < 0 ? off : `+${off}`}`;
const name = (n: string): string => (NAME_RE.test(n) ? n : JSON.stringify(n));

function u64hex(lo: number, hi: number): string {
  return `0x${((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16)}`;
}

function accessText(a: Access): string {
  let s = a.verdict;
  if (a.region !== undefined) s += ` ${name(a.region)}`;
  if (a.coveredBy !== undefined) s += ` by @${a.coveredBy}`;
  return `[${s}]`;
}

function defText(i: Inst & { dst: Reg; hiDead?: boolean }): string {
  return `${reg(i.dst)}${i.hiDead === true ? '.lo' : ''} = `;
}

export function instText(i: Inst): string {
  switch (i.op) {
    case 'const': return `${defText(i)}const ${u64hex(i.lo, i.hi)}`;
    case 'addr': return `${defText(i)}addr data${i.section}${i.offset < 0 ? i.offset : `+${i.offset}`}`;
    case 'mov': return `${defText(i)}mov.${i.w} ${reg(i.src)}`;
    case 'bin': return `${defText(i)}${i.bin}.${i.w} ${reg(i.a)}, ${opnd(i.b)}`;
    case 'neg': return `${defText(i)}neg.${i.w} ${reg(i.src)}`;
    case 'ext': return `${defText(i)}${i.signed ? 's' : 'z'}ext${i.bits}.${i.w} ${reg(i.src)}`;
    case 'bswap': return `${defText(i)}bswap${i.bits} ${reg(i.src)}`;
    case 'load': return `${defText(i)}load.${i.signed ? 's' : 'u'}${i.size * 8} ${memRef(i.base, i.off)} ${accessText(i.access)}`;
    case 'store': return `store.${i.size * 8} ${memRef(i.base, i.off)}, ${opnd(i.value)} ${accessText(i.access)}`;
    case 'atomic': {
      const fetch = i.fetch && !ALWAYS_FETCH.has(i.aop) ? 'fetch.' : '';
      return `atomic.${fetch}${i.aop}.${i.size * 8} ${memRef(i.base, i.off)}, ${reg(i.src)} ${accessText(i.access)}`;
    }
    case 'call': return `call ${i.id}`;
    case 'callx': return `callx ${reg(i.reg)}`;
    case 'calllocal': return `calllocal ${i.func}`;
    case 'budget': return `budget ${i.cost}`;
  }
}

export function termText(t: Terminator): string {
  switch (t.op) {
    case 'jump': return `jump b${t.target}`;
    case 'br': return `br.${t.cond}.${t.w} ${reg(t.a)}, ${opnd(t.b)}, b${t.then}, b${t.else}`;
    case 'ret': return 'ret';
    case 'fault': return `fault ${t.kind}`;
  }
}

function line(text: string, pc: number): string {
  return `  ${text.padEnd(COMMENT_COLUMN - 2)} ; @${pc}`;
}

function usedMaxReg(f: IrFunction): number {
  let max = 10;
  for (const b of f.blocks) {
    for (const i of b.insts) for (const r of regsOf(i)) max = Math.max(max, r);
    if (b.term.op === 'br') {
      max = Math.max(max, b.term.a);
      if ('reg' in b.term.b) max = Math.max(max, b.term.b.reg);
    }
  }
  return max;
}

function regsOf(i: Inst): Reg[] {
  const out: Reg[] = [];
  if ('dst' in i) out.push(i.dst);
  switch (i.op) {
    case 'mov': case 'neg': case 'ext': case 'bswap': out.push(i.src); break;
    case 'bin': out.push(i.a); if ('reg' in i.b) out.push(i.b.reg); break;
    case 'load': out.push(i.base); break;
    case 'store': out.push(i.base); if ('reg' in i.value) out.push(i.value.reg); break;
    case 'atomic': out.push(i.base, i.src); break;
    case 'callx': out.push(i.reg); break;
    default: break;
  }
  return out;
}

export function printFunction(f: IrFunction): string {
  const out: string[] = [];
  const extra = f.maxReg !== usedMaxReg(f) ? `, maxreg ${f.maxReg}` : '';
  out.push(`function ${name(f.name)} (start ${f.start}${extra}) {`);
  for (const b of f.blocks) {
    out.push(`b${b.id}:`);
    for (const i of b.insts) out.push(line(instText(i), i.pc));
    out.push(line(termText(b.term), b.term.pc));
  }
  out.push('}');
  return out.join('\n');
}

const hexBytes = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

export function printIr(m: IrModule): string {
  const out: string[] = [`origin ${JSON.stringify(m.origin)}`];
  if (m.helpers.length > 0) out.push(`helpers ${m.helpers.join(', ')}`);
  for (const d of m.data) out.push(`data ${JSON.stringify(d.name)} ${d.writable ? 'rw' : 'ro'} ${d.bytes.length === 0 ? '-' : hexBytes(d.bytes)}`);
  for (const f of m.functions) out.push(printFunction(f));
  return out.join('\n') + '\n';
}

// -------------------------------------------------------------------------------------- parsing

/** One line being parsed: a cursor over its tokens, failing with the line number. */
class Cursor {
  private pos = 0;
  constructor(readonly line: number, readonly text: string) {}

  fail(detail: string): never {
    throw new IrParseError(this.line, `${detail} in '${this.text.trim()}'`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  done(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }

  end(): void {
    if (!this.done()) this.fail(`unexpected '${this.text.slice(this.pos).trim()}'`);
  }

  /** Matches `re` (anchored) at the cursor, or undefined. */
  try(re: RegExp): RegExpExecArray | undefined {
    this.skipSpace();
    const m = new RegExp(`^(?:${re.source})`, re.flags).exec(this.text.slice(this.pos));
    if (m === null) return undefined;
    this.pos += m[0].length;
    return m;
  }

  expect(re: RegExp, what: string): RegExpExecArray {
    const m = this.try(re);
    if (m === undefined) this.fail(`expected ${what}`);
    return m;
  }

  lit(s: string): void {
    this.expect(new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), `'${s}'`);
  }

  reg(): Reg {
    return Number(this.expect(/r(\d+)\b/, 'a register (rN)')[1]);
  }

  int(what: string): number {
    const m = this.expect(/([+-]?)(0x[0-9a-fA-F]+|\d+)/, what);
    const v = BigInt(m[2]) * (m[1] === '-' ? -1n : 1n);
    if (v < -(1n << 31n) || v > 0xffffffffn) this.fail(`${what} ${m[0]} does not fit in 32 bits`);
    return Number(BigInt.asIntN(32, v));
  }

  nat(what: string): number {
    const m = this.expect(/\d+/, what);
    return Number(m[0]);
  }

  operand(): Operand {
    return this.try(/(?=r\d)/) !== undefined ? { reg: this.reg() } : { imm: this.int('an immediate') };
  }

  block(): number {
    return Number(this.expect(/b(\d+)\b/, 'a block (bN)')[1]);
  }

  name(): string {
    const q = this.try(/"(?:[^"\\]|\\.)*"/);
    if (q !== undefined) return JSON.parse(q[0]) as string;
    return this.expect(/[A-Za-z_][\w.$]*/, 'a name')[0];
  }

  mem(): { base: Reg; off: number } {
    const base = this.reg();
    const off = this.expect(/[+-]\d+/, 'an offset (+N or -N)')[0];
    return { base, off: Number(off) };
  }

  access(): Access {
    this.lit('[');
    const v = this.expect(/proven|check/, "'proven' or 'check'")[0] as Access['verdict'];
    const a: Access = { verdict: v };
    if (this.try(/(?=[A-Za-z_."])(?!by\b)/) !== undefined) a.region = this.name();
    if (this.try(/by\b/) !== undefined) {
      this.lit('@');
      a.coveredBy = this.nat('a pc');
    }
    this.lit(']');
    return a;
  }
}

const WIDTHS: Record<string, Width> = { '32': 32, '64': 64 };
const SIZES: Record<string, 1 | 2 | 4 | 8> = { '8': 1, '16': 2, '32': 4, '64': 8 };

function width(c: Cursor, s: string): Width {
  const w = WIDTHS[s];
  if (w === undefined) c.fail(`width must be 32 or 64 (is '${s}')`);
  return w;
}

function size(c: Cursor, s: string): 1 | 2 | 4 | 8 {
  const z = SIZES[s];
  if (z === undefined) c.fail(`size must be 8, 16, 32 or 64 bits (is '${s}')`);
  return z;
}

/** An instruction with a destination: `rN[.lo] = ...`. */
function parseDef(c: Cursor, pc: number, dst: Reg, hiDead: boolean): Inst {
  const op = c.expect(/[a-z]+[\w.]*/, 'an operation')[0];
  const parts = op.split('.');
  const def = { pc, dst, ...(hiDead ? { hiDead: true } : {}) };
  const head = parts[0];
  if (head === 'const') {
    const m = c.expect(/0x[0-9a-fA-F]{1,16}\b/, 'a 64-bit hex constant');
    const v = BigInt(m[0]);
    return { op: 'const', ...def, lo: Number(BigInt.asIntN(32, v)), hi: Number(BigInt.asIntN(32, v >> 32n)) };
  }
  if (head === 'addr') {
    const m = c.expect(/data(\d+)([+-]\d+)/, 'dataN+offset');
    return { op: 'addr', ...def, section: Number(m[1]), offset: Number(m[2]) };
  }
  if (head === 'mov' || head === 'neg') {
    if (parts.length !== 2) c.fail(`expected ${head}.32 or ${head}.64`);
    return { op: head, ...def, w: width(c, parts[1]), src: c.reg() };
  }
  if (BIN_OPS.has(head)) {
    if (parts.length !== 2) c.fail(`expected ${head}.32 or ${head}.64`);
    const w = width(c, parts[1]);
    const a = c.reg();
    c.lit(',');
    return { op: 'bin', ...def, bin: head as BinOp, w, a, b: c.operand() };
  }
  const ext = /^([sz])ext(8|16|32)$/.exec(head);
  if (ext !== null) {
    if (parts.length !== 2) c.fail(`expected ${head}.32 or ${head}.64`);
    return { op: 'ext', ...def, signed: ext[1] === 's', bits: Number(ext[2]) as 8 | 16 | 32, w: width(c, parts[1]), src: c.reg() };
  }
  const sw = /^bswap(16|32|64)$/.exec(head);
  if (sw !== null && parts.length === 1) return { op: 'bswap', ...def, bits: Number(sw[1]) as 16 | 32 | 64, src: c.reg() };
  if (head === 'load') {
    const m = /^([su])(8|16|32|64)$/.exec(parts[1] ?? '');
    if (m === null || parts.length !== 2) c.fail('expected load.uN or load.sN');
    const { base, off } = c.mem();
    return { op: 'load', ...def, size: size(c, m[2]), signed: m[1] === 's', base, off, access: c.access() };
  }
  return c.fail(`unknown operation '${op}'`);
}

function parseEffect(c: Cursor, pc: number, op: string): Inst {
  const parts = op.split('.');
  switch (parts[0]) {
    case 'store': {
      if (parts.length !== 2) c.fail('expected store.N');
      const sz = size(c, parts[1]);
      const { base, off } = c.mem();
      c.lit(',');
      const value = c.operand();
      return { op: 'store', pc, size: sz, base, off, value, access: c.access() };
    }
    case 'atomic': {
      const fetch = parts[1] === 'fetch';
      const rest = fetch ? parts.slice(2) : parts.slice(1);
      if (rest.length !== 2 || !ATOMIC_OPS.has(rest[0])) c.fail('expected atomic.[fetch.]OP.32|64');
      const sz = size(c, rest[1]);
      if (sz !== 4 && sz !== 8) c.fail('atomic size must be 32 or 64');
      if (fetch && ALWAYS_FETCH.has(rest[0])) c.fail(`${rest[0]} always fetches; write atomic.${rest[0]}.${rest[1]}`);
      const { base, off } = c.mem();
      c.lit(',');
      const src = c.reg();
      return { op: 'atomic', pc, aop: rest[0] as AtomicOp, size: sz, fetch: fetch || ALWAYS_FETCH.has(rest[0]), base, off, src, access: c.access() };
    }
    case 'call': return { op: 'call', pc, id: c.int('a helper id') };
    case 'callx': return { op: 'callx', pc, reg: c.reg() };
    case 'calllocal': return { op: 'calllocal', pc, func: c.nat('a function index') };
    case 'budget': return { op: 'budget', pc, cost: c.nat('a cost') };
    default: return c.fail(`unknown operation '${op}'`);
  }
}

function parseTerm(c: Cursor, pc: number, op: string): Terminator | undefined {
  const parts = op.split('.');
  switch (parts[0]) {
    case 'jump': return { op: 'jump', pc, target: c.block() };
    case 'ret': return { op: 'ret', pc };
    case 'fault': {
      const k = c.expect(/out-of-bounds|permission/, "'out-of-bounds' or 'permission'")[0] as 'out-of-bounds' | 'permission';
      return { op: 'fault', pc, kind: k };
    }
    case 'br': {
      if (parts.length !== 3 || !CONDS.has(parts[1])) c.fail('expected br.COND.32|64');
      const w = width(c, parts[2]);
      const a = c.reg();
      c.lit(',');
      const b = c.operand();
      c.lit(',');
      const then = c.block();
      c.lit(',');
      return { op: 'br', pc, cond: parts[1] as Cond, w, a, b, then, else: c.block() };
    }
    default: return undefined;
  }
}

interface FnDraft {
  fn: IrFunction;
  line: number;
  explicitMaxReg?: number;
  cur?: { id: number; insts: Inst[]; line: number };
}

/** Splits `text ; @pc` into the instruction text and its pc. */
function splitPc(lineNo: number, raw: string): { text: string; pc: number } {
  const semi = raw.indexOf(';');
  if (semi < 0) throw new IrParseError(lineNo, `missing '; @pc' after '${raw.trim()}'`);
  const m = /^\s*@(\d+)\b/.exec(raw.slice(semi + 1));
  if (m === null) throw new IrParseError(lineNo, `expected '; @pc' after '${raw.slice(0, semi).trim()}'`);
  return { text: raw.slice(0, semi), pc: Number(m[1]) };
}

export function parseIr(text: string): IrModule {
  const m: IrModule = { functions: [], data: [], helpers: [], origin: '' };
  const lines = text.split(/\r?\n/);
  let f: FnDraft | undefined;
  const finishFn = (lineNo: number): void => {
    if (f === undefined) return;
    if (f.cur !== undefined) throw new IrParseError(lineNo, `block b${f.cur.id} has no terminator (jump, br, ret or fault)`);
    if (f.fn.blocks.length === 0) throw new IrParseError(f.line, `function ${f.fn.name} has no blocks`);
    f.fn.maxReg = f.explicitMaxReg ?? usedMaxReg(f.fn);
    m.functions.push(f.fn);
    f = undefined;
  };
  for (let k = 0; k < lines.length; k++) {
    const lineNo = k + 1;
    const raw = lines[k];
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith(';')) continue;
    if (f === undefined) {
      const c = new Cursor(lineNo, raw);
      const kw = c.expect(/[a-z]+/, "'origin', 'helpers', 'data' or 'function'")[0];
      if (kw === 'origin') {
        m.origin = c.name();
      } else if (kw === 'helpers') {
        do m.helpers.push(c.int('a helper id')); while (c.try(/,/) !== undefined);
      } else if (kw === 'data') {
        const nm = c.name();
        const rw = c.expect(/rw|ro/, "'rw' or 'ro'")[0];
        const bytes = c.try(/-/) !== undefined ? '' : c.expect(/(?:[0-9a-fA-F]{2})+/, 'hex bytes or -')[0];
        const data: DataSection = { name: nm, bytes: Uint8Array.from(bytes.match(/../g) ?? [], (h) => parseInt(h, 16)), writable: rw === 'rw' };
        m.data.push(data);
      } else if (kw === 'function') {
        const nm = c.name();
        c.lit('(');
        c.lit('start');
        const start = c.nat('a start slot');
        let explicitMaxReg: number | undefined;
        if (c.try(/,/) !== undefined) {
          c.lit('maxreg');
          explicitMaxReg = c.nat('a register count');
        }
        c.lit(')');
        c.lit('{');
        c.end();
        f = { fn: { name: nm, start, blocks: [], maxReg: 10 }, line: lineNo, explicitMaxReg };
        continue;
      } else {
        c.fail(`unknown directive '${kw}'`);
      }
      c.end();
      continue;
    }
    if (trimmed === '}') {
      finishFn(lineNo);
      continue;
    }
    const label = /^b(\d+):$/.exec(trimmed);
    if (label !== null) {
      if (f.cur !== undefined) throw new IrParseError(lineNo, `block b${f.cur.id} has no terminator before b${label[1]}`);
      const id = Number(label[1]);
      if (id !== f.fn.blocks.length) throw new IrParseError(lineNo, `expected block b${f.fn.blocks.length} (blocks are numbered in order from b0), got b${id}`);
      f.cur = { id, insts: [], line: lineNo };
      continue;
    }
    if (f.cur === undefined) throw new IrParseError(lineNo, `instruction outside a block (expected a label bN:) in '${trimmed}'`);
    const { text: body, pc } = splitPc(lineNo, raw);
    const c = new Cursor(lineNo, body);
    const def = c.try(/r(\d+)(\.lo)?\s*=/);
    if (def !== undefined) {
      f.cur.insts.push(parseDef(c, pc, Number(def[1]), def[2] !== undefined));
      c.end();
      continue;
    }
    const op = c.expect(/[a-z]+[\w.]*/, 'an operation')[0];
    const term = parseTerm(c, pc, op);
    if (term !== undefined) {
      c.end();
      const block: Block = { id: f.cur.id, insts: f.cur.insts, term };
      f.fn.blocks.push(block);
      f.cur = undefined;
      continue;
    }
    f.cur.insts.push(parseEffect(c, pc, op));
    c.end();
  }
  if (f !== undefined) throw new IrParseError(lines.length, `function ${f.fn.name} is not closed with '}'`);
  return m;
}
