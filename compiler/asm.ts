// Assembler for the asm dialect of the bpf_conformance suite (the dialect disasm.ts prints).
// Two passes: each line becomes one or two slots with an optional label reference, then labels are
// resolved to slot-relative offsets. Every failure is an AsmError naming the line and the problem.
import {
  ALU_CODE, ATOMIC_OPS, CLS, JMP_CODE, LDDW, SIZE_SUFFIX, type Insn,
} from './opcodes.js';
import { LoadError, type FunctionSym, type Program } from './program.js';

/** An assembly failure; `line` is 1-based within the assembled text. */
export class AsmError extends LoadError {
  readonly line: number;
  constructor(line: number, detail: string, source?: string) {
    super(source === undefined ? `line ${line}: ${detail}` : `line ${line}: ${detail} in '${source}'`);
    this.name = 'AsmError';
    this.line = line;
  }
}

/** What a mnemonic assembles to; operands are checked per kind. */
type Spec =
  | { kind: 'alu'; code: number; off: number } // binary ALU op, K or X form chosen by the operand
  | { kind: 'movsx'; code: number; off: number } // register form only; off is the source width
  | { kind: 'neg'; code: number }
  | { kind: 'end'; code: number; imm: number }
  | { kind: 'lddw' }
  | { kind: 'ldx'; code: number }
  | { kind: 'st'; code: number }
  | { kind: 'stx'; code: number }
  | { kind: 'ja' } // JMP|JA: target in off
  | { kind: 'ja32' } // JMP32|JA (gotol): target in imm
  | { kind: 'jcond'; code: number }
  | { kind: 'call' }
  | { kind: 'callx' }
  | { kind: 'exit' };

/** A label reference waiting for the second pass. */
interface Fixup {
  slot: number;
  field: 'off' | 'imm';
  label: string;
  line: number;
  source: string;
  /** A `call local` target: the label starts a function. */
  call: boolean;
}

interface Assembled {
  insns: Insn[];
  /** Slots that are targets of `call local`, with the function name (label, or a generated one). */
  callTargets: Map<number, string>;
}

const OFF_MIN = -0x8000;
const OFF_MAX = 0x7fff;
const MAX_REG = 15; // r11..r15 do not exist, but decoded programs may name them: the verifier rejects them

const MNEMONICS: ReadonlyMap<string, Spec> = buildMnemonics();

function buildMnemonics(): Map<string, Spec> {
  const m = new Map<string, Spec>();
  const widths: [string, number][] = [['', CLS.ALU64], ['32', CLS.ALU]];
  for (const [sfx, cls] of widths) {
    for (const op of ['add', 'sub', 'mul', 'div', 'or', 'and', 'lsh', 'rsh', 'mod', 'xor', 'mov', 'arsh']) {
      m.set(op + sfx, { kind: 'alu', code: cls | ALU_CODE[op], off: 0 });
    }
    // Signed division and modulo are div/mod with off = 1 (RFC 9669 section 4.1).
    m.set('sdiv' + sfx, { kind: 'alu', code: cls | ALU_CODE.div, off: 1 });
    m.set('smod' + sfx, { kind: 'alu', code: cls | ALU_CODE.mod, off: 1 });
    m.set('neg' + sfx, { kind: 'neg', code: cls | ALU_CODE.neg });
    for (const [jop, jcode] of Object.entries(JMP_CODE)) {
      if (jop === 'ja' || jop === 'call' || jop === 'exit') continue;
      m.set(jop + sfx, { kind: 'jcond', code: (cls === CLS.ALU64 ? CLS.JMP : CLS.JMP32) | jcode });
    }
  }
  const movX = ALU_CODE.mov | 0x08;
  for (const w of [8, 16]) m.set(`movsx${w}32`, { kind: 'movsx', code: CLS.ALU | movX, off: w });
  for (const w of [8, 16, 32]) m.set(`movsx${w}64`, { kind: 'movsx', code: CLS.ALU64 | movX, off: w });
  const end = ALU_CODE.end;
  for (const w of [16, 32, 64]) {
    m.set(`le${w}`, { kind: 'end', code: CLS.ALU | end, imm: w });
    m.set(`be${w}`, { kind: 'end', code: CLS.ALU | end | 0x08, imm: w });
    m.set(`bswap${w}`, { kind: 'end', code: CLS.ALU64 | end, imm: w });
    m.set(`swap${w}`, { kind: 'end', code: CLS.ALU64 | end, imm: w }); // pre-v4 spelling of bswap
  }
  const sizeBits: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };
  for (const [size, bits] of Object.entries(sizeBits)) {
    const s = SIZE_SUFFIX[Number(size)];
    m.set(`ldx${s}`, { kind: 'ldx', code: CLS.LDX | 0x60 | bits });
    m.set(`st${s}`, { kind: 'st', code: CLS.ST | 0x60 | bits });
    m.set(`stx${s}`, { kind: 'stx', code: CLS.STX | 0x60 | bits });
    if (size !== '8') m.set(`ldxs${s}`, { kind: 'ldx', code: CLS.LDX | 0x80 | bits });
  }
  m.set('lddw', { kind: 'lddw' });
  m.set('ja', { kind: 'ja' });
  m.set('ja32', { kind: 'ja32' });
  m.set('call', { kind: 'call' });
  m.set('callx', { kind: 'callx' });
  m.set('exit', { kind: 'exit' });
  return m;
}

/** Atomic operation name -> imm: the plain form for add/or/and/xor (fetch adds 0x01); xchg and cmpxchg always fetch. */
const ATOMIC_IMM: ReadonlyMap<string, number> = new Map(
  Object.entries(ATOMIC_OPS).filter(([, a]) => !a.fetch || a.op === 'xchg' || a.op === 'cmpxchg')
    .map(([imm, a]) => [a.op, Number(imm)]),
);
const ATOMIC_FETCH = 0x01;

const OPERAND_COUNT: Record<Spec['kind'], number> = {
  alu: 2, movsx: 2, neg: 1, end: 1, lddw: 2, ldx: 2, st: 2, stx: 2, ja: 1, ja32: 1, jcond: 3,
  call: 1, callx: 1, exit: 0,
};

const LABEL_RE = /^[A-Za-z_][\w.]*$/;
const LABEL_DEF_RE = /^([A-Za-z_][\w.]*)\s*:\s*(.*)$/;
const NUMBER_RE = /^([+-]?)(0x[0-9a-f]+|\d+)$/i;
const MEM_RE = /^\[\s*([^\s+\-\]]+)\s*(?:([+-])\s*(0x[0-9a-f]+|\d+)\s*)?\]$/i;
const FIELD_RE = /^(code|dst|src|off|imm)=(\S+)$/;

/** One source line being assembled; its errors name the line and its text. */
class LineCtx {
  constructor(readonly line: number, readonly source: string) {}

  fail(detail: string): never {
    throw new AsmError(this.line, detail, this.source);
  }

  reg(text: string): number {
    const m = /^%r(\d+)$/.exec(text);
    if (m === null || m[1].length > 2 || Number(m[1]) > MAX_REG) this.fail(`invalid register '${text}'`);
    return Number(m[1]);
  }

  number(text: string, what: string): bigint {
    return this.parsed(text, what).value;
  }

  parsed(text: string, what: string): { value: bigint; hex: boolean } {
    const m = NUMBER_RE.exec(text);
    if (m === null) this.fail(`invalid ${what} '${text}'`);
    const v = BigInt(m[2]);
    return { value: m[1] === '-' ? -v : v, hex: /^0x/i.test(m[2]) };
  }

  /**
   * A field of `bits` bits. Decimal must fit the signed range; hex may also spell the unsigned bit
   * pattern (`0xffffffff` is -1), as the suite's negative tests expect (invalid_imm32_*).
   */
  sized(text: string, what: string, bits: number): number {
    const { value, hex } = this.parsed(text, what);
    const min = -(1n << BigInt(bits - 1));
    const max = hex ? (1n << BigInt(bits)) - 1n : -min - 1n;
    if (value < min || value > max) {
      this.fail(`${what} ${text} out of ${bits}-bit range (${hex ? `-0x${(-min).toString(16)}..0x${max.toString(16)}` : `${min}..${max}`})`);
    }
    return Number(BigInt.asIntN(bits, value));
  }

  imm32(text: string): number {
    return this.sized(text, 'immediate', 32);
  }

  offset(text: string): number {
    return this.sized(text, 'offset', 16);
  }

  /** `[%rN]`, `[%rN+off]`, `[%rN-off]`. */
  mem(text: string): { reg: number; off: number } {
    const m = MEM_RE.exec(text);
    if (m === null) this.fail(`invalid memory operand '${text}' (expected [%rN+offset])`);
    return { reg: this.reg(m[1]), off: m[2] === undefined ? 0 : this.offset(m[2] + m[3]) };
  }

  /** Register or immediate second operand of ALU and conditional jumps. */
  regOrImm(text: string): { x: boolean; src: number; imm: number } {
    return text.startsWith('%') ? { x: true, src: this.reg(text), imm: 0 } : { x: false, src: 0, imm: this.imm32(text) };
  }

  operands(rest: string, want: number, name: string): string[] {
    const ops = rest === '' ? [] : rest.split(',').map((s) => s.trim());
    if (ops.length !== want || ops.some((o) => o === '')) {
      this.fail(`invalid number of operands for ${name}: expected ${want}, got ${ops.filter((o) => o !== '').length}`);
    }
    return ops;
  }
}

/** Assemble to instruction slots (an `lddw` gives two). */
export function assemble(text: string): Insn[] {
  return assembleWithInfo(text).insns;
}

/** Assemble to a Program whose functions are the main code and every `call local` target. */
export function assembleProgram(text: string, origin: string): Program {
  const { insns, callTargets } = assembleWithInfo(text);
  const starts = [...callTargets.keys()].filter((s) => s > 0 && s < insns.length).sort((a, b) => a - b);
  const bounds = [0, ...starts, insns.length];
  const functions: FunctionSym[] = bounds.slice(0, -1).map((start, k) => ({
    name: k === 0 ? 'main' : (callTargets.get(start) ?? `fn_${start}`),
    start,
    end: bounds[k + 1],
  }));
  return { insns, entry: 0, functions, data: [], relocs: [], origin };
}

function assembleWithInfo(text: string): Assembled {
  const insns: Insn[] = [];
  const labels = new Map<string, number>();
  const fixups: Fixup[] = [];
  const numericCalls = new Map<number, string>();
  let firstExit: number | undefined;

  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const hash = lines[n].indexOf('#');
    let body = (hash < 0 ? lines[n] : lines[n].slice(0, hash)).trim();
    if (body === '') continue;
    const ctx = new LineCtx(n + 1, body);
    const def = LABEL_DEF_RE.exec(body);
    if (def !== null) {
      if (labels.has(def[1])) ctx.fail(`duplicate label '${def[1]}'`);
      labels.set(def[1], insns.length);
      body = def[2].trim();
      if (body === '') continue;
    }
    const line = new LineCtx(n + 1, body);
    const slot = insns.length;
    const out = assembleLine(line, slot, fixups, numericCalls);
    if (body === 'exit' && firstExit === undefined) firstExit = slot;
    insns.push(...out);
  }
  // The dialect lets jumps name `exit`: the first exit instruction, unless a label says otherwise.
  if (!labels.has('exit') && firstExit !== undefined) labels.set('exit', firstExit);

  const callTargets = new Map(numericCalls);
  for (const f of fixups) {
    const target = labels.get(f.label);
    const ctx: LineCtx = new LineCtx(f.line, f.source);
    if (target === undefined) ctx.fail(`undefined label '${f.label}'`);
    const rel = target - (f.slot + 1);
    if (f.field === 'off' && (rel < OFF_MIN || rel > OFF_MAX)) ctx.fail(`jump to '${f.label}' is too far (${rel} slots)`);
    insns[f.slot][f.field] = rel;
    if (f.call) callTargets.set(target, f.label);
  }
  return { insns, callTargets };
}

function assembleLine(ctx: LineCtx, slot: number, fixups: Fixup[], numericCalls: Map<number, string>): Insn[] {
  const body = ctx.source;
  const sp = body.search(/\s/);
  const mnemonic = sp < 0 ? body : body.slice(0, sp);
  const rest = sp < 0 ? '' : body.slice(sp).trim();
  if (mnemonic === '.insn') return [rawSlot(ctx, rest)];
  if (mnemonic === 'lock') return [atomic(ctx, rest)];
  if (mnemonic.startsWith('.')) ctx.fail(`unknown directive '${mnemonic}'`);
  if (mnemonic.startsWith('--')) ctx.fail(`unknown directive '${body}'`);
  const spec = MNEMONICS.get(mnemonic);
  if (spec === undefined) ctx.fail(`invalid mnemonic '${mnemonic}'`);

  // Jump targets: `+3`/`-2`/`3` are slot offsets, anything else is a label resolved later.
  const target = (text: string, field: 'off' | 'imm', call: boolean): number => {
    if (NUMBER_RE.test(text)) {
      const v = field === 'off' ? ctx.offset(text) : ctx.imm32(text);
      if (call) numericCalls.set(slot + 1 + v, `fn_${slot + 1 + v}`);
      return v;
    }
    if (!LABEL_RE.test(text)) ctx.fail(`invalid jump target '${text}'`);
    fixups.push({ slot, field, label: text, line: ctx.line, source: ctx.source, call });
    return 0;
  };
  const insn = (code: number, fields: Partial<Insn> = {}): Insn => ({ code, dst: 0, src: 0, off: 0, imm: 0, ...fields });

  if (spec.kind === 'call') {
    // `call 5` (helper), `call local LABEL|+N`, `call %rN` (same as callx).
    const local = /^local\s+(\S+)$/.exec(rest);
    if (local !== null) return [insn(CLS.JMP | JMP_CODE.call, { src: 1, imm: target(local[1], 'imm', true) })];
    const [op] = ctx.operands(rest, 1, mnemonic);
    if (op.startsWith('%')) return [insn(CLS.JMP | JMP_CODE.call | 0x08, { dst: ctx.reg(op) })];
    return [insn(CLS.JMP | JMP_CODE.call, { imm: ctx.imm32(op) })];
  }

  const ops = ctx.operands(rest, OPERAND_COUNT[spec.kind], mnemonic);
  switch (spec.kind) {
    case 'alu': {
      const s = ctx.regOrImm(ops[1]);
      return [insn(spec.code | (s.x ? 0x08 : 0), { dst: ctx.reg(ops[0]), src: s.src, off: spec.off, imm: s.imm })];
    }
    case 'movsx':
      return [insn(spec.code, { dst: ctx.reg(ops[0]), src: ctx.reg(ops[1]), off: spec.off })];
    case 'neg':
      return [insn(spec.code, { dst: ctx.reg(ops[0]) })];
    case 'end':
      return [insn(spec.code, { dst: ctx.reg(ops[0]), imm: spec.imm })];
    case 'lddw': {
      const v = ctx.number(ops[1], 'immediate');
      if (v < -(1n << 63n) || v >= 1n << 64n) ctx.fail(`immediate ${ops[1]} out of 64-bit range`);
      const u = BigInt.asUintN(64, v);
      return [
        insn(LDDW, { dst: ctx.reg(ops[0]), imm: Number(BigInt.asIntN(32, u)) }),
        insn(0, { imm: Number(BigInt.asIntN(32, u >> 32n)) }),
      ];
    }
    case 'ldx': {
      const m = ctx.mem(ops[1]);
      return [insn(spec.code, { dst: ctx.reg(ops[0]), src: m.reg, off: m.off })];
    }
    case 'st': {
      const m = ctx.mem(ops[0]);
      return [insn(spec.code, { dst: m.reg, off: m.off, imm: ctx.imm32(ops[1]) })];
    }
    case 'stx': {
      const m = ctx.mem(ops[0]);
      return [insn(spec.code, { dst: m.reg, src: ctx.reg(ops[1]), off: m.off })];
    }
    case 'ja':
      return [insn(CLS.JMP | JMP_CODE.ja, { off: target(ops[0], 'off', false) })];
    case 'ja32':
      return [insn(CLS.JMP32 | JMP_CODE.ja, { imm: target(ops[0], 'imm', false) })];
    case 'jcond': {
      const s = ctx.regOrImm(ops[1]);
      const dst = ctx.reg(ops[0]);
      return [insn(spec.code | (s.x ? 0x08 : 0), { dst, src: s.src, imm: s.imm, off: target(ops[2], 'off', false) })];
    }
    case 'callx':
      return [insn(CLS.JMP | JMP_CODE.call | 0x08, { dst: ctx.reg(ops[0]) })];
    case 'exit':
      return [insn(CLS.JMP | JMP_CODE.exit)];
  }
}

/** `lock [fetch] OP[32] [%rD+off], %rS`. */
function atomic(ctx: LineCtx, rest: string): Insn {
  const parts = /^(?:(fetch)\s+)?([^\s[]+)\s*(.*)$/.exec(rest);
  if (parts === null || parts[2] === 'fetch') {
    ctx.fail('invalid number of operands for lock: expected an operation and 2 operands');
  }
  const fetch = parts[1] !== undefined;
  const opWord = parts[2];
  const afterOp = parts[3];
  const wide = !opWord.endsWith('32');
  const opName = wide ? opWord : opWord.slice(0, -2);
  const base = ATOMIC_IMM.get(opName);
  if (base === undefined) ctx.fail(`invalid atomic operation '${opWord}' (expected add, or, and, xor, xchg or cmpxchg)`);
  const ops = ctx.operands(afterOp, 2, `lock ${fetch ? 'fetch ' : ''}${opWord}`);
  const m = ctx.mem(ops[0]);
  return {
    code: CLS.STX | 0xc0 | (wide ? 0x18 : 0x00),
    dst: m.reg,
    src: ctx.reg(ops[1]),
    off: m.off,
    imm: fetch ? base | ATOMIC_FETCH : base,
  };
}

/** `.insn code=0x05 dst=0 src=0 off=0 imm=1`: one slot, fields as written (disasm's form for invalid slots). */
function rawSlot(ctx: LineCtx, rest: string): Insn {
  const fields = new Map<string, string>();
  for (const word of rest.split(/\s+/).filter((w) => w !== '')) {
    const m = FIELD_RE.exec(word);
    if (m === null) ctx.fail(`invalid .insn field '${word}' (expected code=, dst=, src=, off=, imm=)`);
    if (fields.has(m[1])) ctx.fail(`duplicate .insn field '${m[1]}'`);
    fields.set(m[1], m[2]);
  }
  const small = (name: 'code' | 'dst' | 'src', max: number): number => {
    const text = fields.get(name);
    if (text === undefined) ctx.fail(`.insn is missing field ${name}=`);
    const v = ctx.number(text, name);
    if (v < 0n || v > BigInt(max)) ctx.fail(`.insn ${name}=${text} out of range (0..${max})`);
    return Number(v);
  };
  const need = (name: 'off' | 'imm'): string => fields.get(name) ?? ctx.fail(`.insn is missing field ${name}=`);
  return {
    code: small('code', 0xff),
    dst: small('dst', 15),
    src: small('src', 15),
    off: ctx.offset(need('off')),
    imm: ctx.imm32(need('imm')),
  };
}
