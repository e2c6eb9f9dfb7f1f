// WebAssembly binary-format facts the encoder needs: opcodes (MVP, sign-extension, bulk memory),
// value and block type codes, section ids, external kinds, and per-opcode facts as tables.
// Numbering follows the WebAssembly core specification, "Binary Format" chapter.

export type ValType = 'i32' | 'i64';
export type BlockType = 'empty' | ValType;

export const VAL_TYPE: Readonly<Record<ValType, number>> = { i32: 0x7f, i64: 0x7e };
export const BLOCK_TYPE: Readonly<Record<BlockType, number>> = { empty: 0x40, i32: 0x7f, i64: 0x7e };

export const FUNC_TYPE_TAG = 0x60;
export const FUNCREF = 0x70;
export const MAGIC_AND_VERSION = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
export const PAGE_SIZE = 65536;
export const MAX_PAGES = 65536;

export const Section = {
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
} as const;

export const ExternKind = { Func: 0, Table: 1, Memory: 2, Global: 3 } as const;

/** Subsection ids of the custom `name` section. */
export const NameSubsection = { Module: 0, Function: 1, Local: 2 } as const;

export const Op = {
  Unreachable: 0x00,
  Nop: 0x01,
  Block: 0x02,
  Loop: 0x03,
  If: 0x04,
  Else: 0x05,
  End: 0x0b,
  Br: 0x0c,
  BrIf: 0x0d,
  BrTable: 0x0e,
  Return: 0x0f,
  Call: 0x10,
  CallIndirect: 0x11,
  Drop: 0x1a,
  Select: 0x1b,

  LocalGet: 0x20,
  LocalSet: 0x21,
  LocalTee: 0x22,
  GlobalGet: 0x23,
  GlobalSet: 0x24,

  I32Load: 0x28,
  I64Load: 0x29,
  I32Load8S: 0x2c,
  I32Load8U: 0x2d,
  I32Load16S: 0x2e,
  I32Load16U: 0x2f,
  I64Load8S: 0x30,
  I64Load8U: 0x31,
  I64Load16S: 0x32,
  I64Load16U: 0x33,
  I64Load32S: 0x34,
  I64Load32U: 0x35,
  I32Store: 0x36,
  I64Store: 0x37,
  I32Store8: 0x3a,
  I32Store16: 0x3b,
  I64Store8: 0x3c,
  I64Store16: 0x3d,
  I64Store32: 0x3e,
  MemorySize: 0x3f,
  MemoryGrow: 0x40,

  I32Const: 0x41,
  I64Const: 0x42,

  I32Eqz: 0x45,
  I32Eq: 0x46,
  I32Ne: 0x47,
  I32LtS: 0x48,
  I32LtU: 0x49,
  I32GtS: 0x4a,
  I32GtU: 0x4b,
  I32LeS: 0x4c,
  I32LeU: 0x4d,
  I32GeS: 0x4e,
  I32GeU: 0x4f,

  I64Eqz: 0x50,
  I64Eq: 0x51,
  I64Ne: 0x52,
  I64LtS: 0x53,
  I64LtU: 0x54,
  I64GtS: 0x55,
  I64GtU: 0x56,
  I64LeS: 0x57,
  I64LeU: 0x58,
  I64GeS: 0x59,
  I64GeU: 0x5a,

  I32Clz: 0x67,
  I32Ctz: 0x68,
  I32Popcnt: 0x69,
  I32Add: 0x6a,
  I32Sub: 0x6b,
  I32Mul: 0x6c,
  I32DivS: 0x6d,
  I32DivU: 0x6e,
  I32RemS: 0x6f,
  I32RemU: 0x70,
  I32And: 0x71,
  I32Or: 0x72,
  I32Xor: 0x73,
  I32Shl: 0x74,
  I32ShrS: 0x75,
  I32ShrU: 0x76,
  I32Rotl: 0x77,
  I32Rotr: 0x78,

  I64Clz: 0x79,
  I64Ctz: 0x7a,
  I64Popcnt: 0x7b,
  I64Add: 0x7c,
  I64Sub: 0x7d,
  I64Mul: 0x7e,
  I64DivS: 0x7f,
  I64DivU: 0x80,
  I64RemS: 0x81,
  I64RemU: 0x82,
  I64And: 0x83,
  I64Or: 0x84,
  I64Xor: 0x85,
  I64Shl: 0x86,
  I64ShrS: 0x87,
  I64ShrU: 0x88,
  I64Rotl: 0x89,
  I64Rotr: 0x8a,

  I32WrapI64: 0xa7,
  I64ExtendI32S: 0xac,
  I64ExtendI32U: 0xad,

  I32Extend8S: 0xc0,
  I32Extend16S: 0xc1,
  I64Extend8S: 0xc2,
  I64Extend16S: 0xc3,
  I64Extend32S: 0xc4,

  /** Prefix of the "misc" opcodes; the sub-opcode follows as a u32 LEB128. */
  PrefixFC: 0xfc,
} as const;

/** Sub-opcodes after the 0xfc prefix (bulk memory). */
export const OpFC = { MemoryCopy: 0x0a, MemoryFill: 0x0b } as const;

/** Mnemonics for diagnostics, indexed by opcode byte. */
export const OP_NAME: readonly string[] = (() => {
  const names: string[] = new Array<string>(256).fill('');
  for (const [key, code] of Object.entries(Op)) {
    if (key === 'PrefixFC') continue;
    // I64ExtendI32S -> i64.extend_i32_s; LocalGet -> local.get; BrTable -> br_table
    const m = /^(I32|I64|Local|Global|Memory)?(.*)$/.exec(key);
    const head = m?.[1]?.toLowerCase();
    const tail = (m?.[2] ?? key)
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase();
    names[code] = head ? `${head}.${tail}` : tail;
  }
  return names;
})();

/** Opcodes that take no immediate and do not affect control structure: safe for `plain()`. */
export const PLAIN_OPS: Uint8Array = (() => {
  const t = new Uint8Array(256);
  const ranges: readonly (readonly [number, number])[] = [
    [Op.I32Eqz, Op.I64GeU],
    [Op.I32Clz, Op.I64Rotr],
    [Op.I32Extend8S, Op.I64Extend32S],
  ];
  for (const [lo, hi] of ranges) t.fill(1, lo, hi + 1);
  for (const op of [Op.Nop, Op.Drop, Op.Select, Op.Unreachable, Op.I32WrapI64, Op.I64ExtendI32S, Op.I64ExtendI32U]) {
    t[op] = 1;
  }
  return t;
})();

/** log2 of the natural alignment of each load/store opcode (0 where not a memory access). */
export const NATURAL_ALIGN: Uint8Array = (() => {
  const t = new Uint8Array(256);
  const facts: readonly (readonly [number, number])[] = [
    [Op.I32Load, 2],
    [Op.I64Load, 3],
    [Op.I32Load8S, 0],
    [Op.I32Load8U, 0],
    [Op.I32Load16S, 1],
    [Op.I32Load16U, 1],
    [Op.I64Load8S, 0],
    [Op.I64Load8U, 0],
    [Op.I64Load16S, 1],
    [Op.I64Load16U, 1],
    [Op.I64Load32S, 2],
    [Op.I64Load32U, 2],
    [Op.I32Store, 2],
    [Op.I64Store, 3],
    [Op.I32Store8, 0],
    [Op.I32Store16, 1],
    [Op.I64Store8, 0],
    [Op.I64Store16, 1],
    [Op.I64Store32, 2],
  ];
  for (const [op, a] of facts) t[op] = a;
  return t;
})();

/** Whether each opcode byte is a load or store (whose immediates are align and offset). */
export const IS_MEMORY_ACCESS: Uint8Array = (() => {
  const t = new Uint8Array(256);
  t.fill(1, Op.I32Load, Op.I64Store32 + 1);
  // f32/f64 loads and stores are not part of what the encoder emits
  for (const op of [0x2a, 0x2b, 0x38, 0x39]) t[op] = 0;
  return t;
})();
