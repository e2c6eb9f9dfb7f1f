// Assembles a Wasm module from its parts: deduplicated function types, function imports, at most
// one memory (defined or imported) and one funcref table, globals, exports, start, element and
// data segments, the code of each FunctionBuilder and a `name` section so engine stack traces show
// femtojit's function names. Cross-references (call targets, global writes, memory use, export
// targets) are checked when the module is built, with messages naming the culprit.
import { FunctionBuilder } from './encode.js';
import { ByteReader, ByteWriter, WasmEncodeError, lebU32Size } from './leb128.js';
import {
  ExternKind,
  FUNCREF,
  FUNC_TYPE_TAG,
  MAGIC_AND_VERSION,
  MAX_PAGES,
  NameSubsection,
  Op,
  PAGE_SIZE,
  Section,
  VAL_TYPE,
} from './opcodes.js';
import type { ValType } from './opcodes.js';

export interface FuncType {
  params: readonly ValType[];
  results: readonly ValType[];
}

/** Limits in 64 KiB pages. */
export interface MemoryDesc {
  min: number;
  max?: number;
  /** Import the memory instead of defining it. */
  import?: { module: string; name: string };
  /** Export it under this name (an imported memory may be re-exported). */
  export?: string;
}

export interface TableDesc {
  min: number;
  max?: number;
  export?: string;
}

export interface GlobalDesc {
  type: ValType;
  mutable: boolean;
  /** Initial value; any 32- or 64-bit pattern as for i32.const / i64.const. */
  init: number | bigint;
  export?: string;
  /** Not encoded (the name section carries function names only); kept for messages. */
  name?: string;
}

export interface ModuleOptions {
  /** Module name for the `name` section. */
  name?: string;
  /** Emit the `name` section (default true). */
  names?: boolean;
}

interface ImportedFunc {
  module: string;
  field: string;
  typeIndex: number;
  name: string;
}

interface Export {
  name: string;
  kind: number;
  index: number;
}

interface Segment<T> {
  offset: number;
  items: T;
}

const TWO_63 = 1n << 63n;
const TWO_64 = 1n << 64n;
const KIND_NAME = ['function', 'table', 'memory', 'global'];

/** Encoded declaration sections by build's declarationsKey (few shapes occur: kept small). */
const DECLARATIONS = new Map<string, Uint8Array>();
const DECLARATIONS_MAX = 64;

// Reused by every build(): building is synchronous and never reentrant.
const SCRATCH_OUT = new ByteWriter(16384);
const SCRATCH_SECTION = new ByteWriter(1024);
/** A scratch buffer grown past this by a large module is let go afterwards. */
const SCRATCH_KEEP = 1 << 20;

export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly typeKeys = new Map<number | string, number>();
  private readonly imports: ImportedFunc[] = [];
  private readonly funcs: FunctionBuilder[] = [];
  private readonly globals: GlobalDesc[] = [];
  private readonly exports: Export[] = [];
  private readonly elements: Segment<readonly number[]>[] = [];
  private readonly data: Segment<Uint8Array>[] = [];
  private memory: MemoryDesc | null = null;
  private table: TableDesc | null = null;
  private start: number | null = null;

  constructor(private readonly options: ModuleOptions = {}) {}

  /** Index of the function type (params) -> (results), added once however often it is asked for. */
  addType(params: readonly ValType[], results: readonly ValType[]): number {
    // A number while it fits (both lengths, then a bit per type): a string built per call cost
    // more than the rest of a small module's declarations.
    let key: number | string;
    if (params.length + results.length <= 40) {
      key = params.length * 64 + results.length;
      for (const p of params) key = key * 2 + this.valTypeBit(p);
      for (const r of results) key = key * 2 + this.valTypeBit(r);
    } else {
      key = '';
      for (const p of params) key += this.valTypeChar(p);
      key += ':';
      for (const r of results) key += this.valTypeChar(r);
    }
    let index = this.typeKeys.get(key);
    if (index === undefined) {
      index = this.types.length;
      this.types.push({ params: params.slice(), results: results.slice() });
      this.typeKeys.set(key, index);
    }
    return index;
  }

  get typeCount(): number {
    return this.types.length;
  }

  /** Imports a function; returns its function index. Imports must precede defined functions. */
  importFunction(
    module: string,
    field: string,
    params: readonly ValType[],
    results: readonly ValType[],
    name = `${module}.${field}`,
  ): number {
    if (this.funcs.length > 0) {
      this.fail(`import '${module}.${field}' declared after defined functions: imports come first in the index space`);
    }
    const typeIndex = this.addType(params, results);
    this.imports.push({ module, field, typeIndex, name });
    return this.imports.length - 1;
  }

  /** Starts a function; emit its code through the returned builder. */
  addFunction(
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
    options: { export?: string; capacity?: number } = {},
  ): FunctionBuilder {
    const typeIndex = this.addType(params, results);
    const index = this.imports.length + this.funcs.length;
    // The type's own copies: the builder only reads them, and one slice per module is enough.
    const type = this.types[typeIndex];
    const fb = new FunctionBuilder(name, index, typeIndex, type.params, type.results, options.capacity);
    this.funcs.push(fb);
    if (options.export !== undefined) this.exportFunction(index, options.export);
    return fb;
  }

  get functionCount(): number {
    return this.imports.length + this.funcs.length;
  }

  setMemory(desc: MemoryDesc): void {
    if (this.memory) this.fail('a memory is already declared: modules have at most one');
    this.checkLimits('memory', desc.min, desc.max, MAX_PAGES);
    this.memory = { ...desc };
    if (desc.export !== undefined) this.exports.push({ name: desc.export, kind: ExternKind.Memory, index: 0 });
  }

  setTable(desc: TableDesc): void {
    if (this.table) this.fail('a table is already declared: modules have at most one');
    this.checkLimits('table', desc.min, desc.max, 0xffffffff);
    this.table = { ...desc };
    if (desc.export !== undefined) this.exports.push({ name: desc.export, kind: ExternKind.Table, index: 0 });
  }

  /** Adds a global; returns its index. */
  addGlobal(desc: GlobalDesc): number {
    const label = desc.name ?? `#${this.globals.length}`;
    if (VAL_TYPE[desc.type] === undefined) this.fail(`global ${label}: type '${String(desc.type)}' is not i32 or i64`);
    this.checkInit(label, desc.type, desc.init);
    const index = this.globals.length;
    this.globals.push({ ...desc });
    if (desc.export !== undefined) this.exportGlobal(index, desc.export);
    return index;
  }

  exportFunction(index: number, name: string): void {
    this.exports.push({ name, kind: ExternKind.Func, index });
  }

  exportGlobal(index: number, name: string): void {
    this.exports.push({ name, kind: ExternKind.Global, index });
  }

  setStart(funcIndex: number): void {
    this.start = funcIndex;
  }

  /** Active element segment: table[offset + i] = funcIndices[i]. */
  addElement(offset: number, funcIndices: readonly number[]): void {
    if (offset >>> 0 !== offset) this.fail(`element segment offset ${offset} is not in [0, 2^32-1]`);
    this.elements.push({ offset, items: funcIndices.slice() });
  }

  /** Active data segment: memory[offset ..] = bytes, at instantiation. */
  addData(offset: number, bytes: Uint8Array): void {
    if (offset >>> 0 !== offset) this.fail(`data segment offset ${offset} is not in [0, 2^32-1]`);
    this.data.push({ offset, items: bytes });
  }

  /**
   * The module's bytes. `declarationsKey` names its declarations: its types, imports, function
   * types, table, memory, globals, exports, start and element segments (everything before the
   * code). Modules built with one key must declare the same things: the first one's encoded
   * sections (checked once) are kept and the others reuse them, which spares a JIT that builds
   * many modules of one shape most of the encoding of a small module.
   */
  build(declarationsKey?: string): Uint8Array<ArrayBuffer> {
    for (const fb of this.funcs) fb.finish();
    this.checkReferences();

    let codeSize = lebU32Size(this.funcs.length);
    for (const fb of this.funcs) codeSize += lebU32Size(fb.entrySize) + fb.entrySize;

    // Scratch writers shared by every build (allocating buffers dominates small modules' time);
    // only the exact-size copy toBytes makes at the end is the module's own.
    const out = SCRATCH_OUT;
    out.length = 0;
    out.reserve(codeSize + 1024);
    out.bytesFrom(MAGIC_AND_VERSION);
    const s = SCRATCH_SECTION;
    s.length = 0;
    const key = declarationsKey;
    const known = key === undefined ? undefined : DECLARATIONS.get(key);
    if (known !== undefined) out.bytesFrom(known);
    else {
      this.checkDeclarations();
      this.writeDeclarations(out, s);
      if (key !== undefined) {
        if (DECLARATIONS.size >= DECLARATIONS_MAX) DECLARATIONS.clear();
        DECLARATIONS.set(key, out.bytes.slice(MAGIC_AND_VERSION.length, out.length));
      }
    }

    if (this.funcs.length > 0) {
      out.u8(Section.Code);
      out.writeU32(codeSize);
      out.writeU32(this.funcs.length);
      for (const fb of this.funcs) fb.writeEntry(out);
    }

    if (this.data.length > 0) {
      s.writeU32(this.data.length);
      for (const seg of this.data) {
        s.u8(0); // active, memory 0, offset expression follows
        s.u8(Op.I32Const);
        s.writeS32(seg.offset | 0);
        s.u8(Op.End);
        s.writeU32(seg.items.length);
        s.bytesFrom(seg.items);
      }
      this.flush(out, Section.Data, s);
    }

    if (this.options.names !== false) this.writeNames(out, s);
    const bytes = out.toBytes();
    if (out.bytes.length > SCRATCH_KEEP) SCRATCH_OUT.bytes = new Uint8Array(16384);
    return bytes;
  }

  // ---- internals --------------------------------------------------------------------------------

  /** The sections before the code: types, imports, functions, table, memory, globals, exports, start, elements. */
  private writeDeclarations(out: ByteWriter, s: ByteWriter): void {
    if (this.types.length > 0) {
      s.writeU32(this.types.length);
      for (const t of this.types) {
        s.u8(FUNC_TYPE_TAG);
        s.writeU32(t.params.length);
        for (const p of t.params) s.u8(VAL_TYPE[p]);
        s.writeU32(t.results.length);
        for (const r of t.results) s.u8(VAL_TYPE[r]);
      }
      this.flush(out, Section.Type, s);
    }

    const memImport = this.memory?.import;
    if (this.imports.length > 0 || memImport) {
      s.writeU32(this.imports.length + (memImport ? 1 : 0));
      for (const imp of this.imports) {
        s.name(imp.module);
        s.name(imp.field);
        s.u8(ExternKind.Func);
        s.writeU32(imp.typeIndex);
      }
      if (memImport && this.memory) {
        s.name(memImport.module);
        s.name(memImport.name);
        s.u8(ExternKind.Memory);
        this.limits(s, this.memory.min, this.memory.max);
      }
      this.flush(out, Section.Import, s);
    }

    if (this.funcs.length > 0) {
      s.writeU32(this.funcs.length);
      for (const fb of this.funcs) s.writeU32(fb.typeIndex);
      this.flush(out, Section.Function, s);
    }

    if (this.table) {
      s.writeU32(1);
      s.u8(FUNCREF);
      this.limits(s, this.table.min, this.table.max);
      this.flush(out, Section.Table, s);
    }

    if (this.memory && !memImport) {
      s.writeU32(1);
      this.limits(s, this.memory.min, this.memory.max);
      this.flush(out, Section.Memory, s);
    }

    if (this.globals.length > 0) {
      s.writeU32(this.globals.length);
      for (const g of this.globals) {
        s.u8(VAL_TYPE[g.type]);
        s.u8(g.mutable ? 1 : 0);
        if (g.type === 'i32') {
          s.u8(Op.I32Const);
          s.writeS32(Number(g.init) | 0);
        } else {
          s.u8(Op.I64Const);
          s.s64(BigInt(g.init));
        }
        s.u8(Op.End);
      }
      this.flush(out, Section.Global, s);
    }

    if (this.exports.length > 0) {
      s.writeU32(this.exports.length);
      for (const e of this.exports) {
        s.name(e.name);
        s.u8(e.kind);
        s.writeU32(e.index);
      }
      this.flush(out, Section.Export, s);
    }

    if (this.start !== null) {
      s.writeU32(this.start);
      this.flush(out, Section.Start, s);
    }

    if (this.elements.length > 0) {
      s.writeU32(this.elements.length);
      for (const seg of this.elements) {
        s.u8(0); // active, table 0, funcref, offset expression follows
        s.u8(Op.I32Const);
        s.writeS32(seg.offset | 0);
        s.u8(Op.End);
        s.writeU32(seg.items.length);
        for (const f of seg.items) s.writeU32(f);
      }
      this.flush(out, Section.Element, s);
    }
  }

  private writeNames(out: ByteWriter, s: ByteWriter): void {
    s.name('name');
    const sub = new ByteWriter(256);
    if (this.options.name !== undefined) {
      sub.name(this.options.name);
      this.flush(s, NameSubsection.Module, sub);
    }
    sub.writeU32(this.imports.length + this.funcs.length);
    this.imports.forEach((imp, i) => {
      sub.writeU32(i);
      sub.name(imp.name);
    });
    for (const fb of this.funcs) {
      sub.writeU32(fb.index);
      sub.name(fb.name);
    }
    this.flush(s, NameSubsection.Function, sub);
    this.flush(out, Section.Custom, s);
  }

  /** Writes `id`, the size of `content` and `content` to `out`, and empties `content`. */
  private flush(out: ByteWriter, id: number, content: ByteWriter): void {
    out.u8(id);
    out.writeU32(content.length);
    out.reserve(content.length);
    out.bytes.set(content.bytes.subarray(0, content.length), out.length);
    out.length += content.length;
    content.length = 0;
  }

  private limits(s: ByteWriter, min: number, max: number | undefined): void {
    if (max === undefined) {
      s.u8(0);
      s.writeU32(min);
    } else {
      s.u8(1);
      s.writeU32(min);
      s.writeU32(max);
    }
  }

  private checkReferences(): void {
    const nFuncs = this.functionCount;
    for (const fb of this.funcs) {
      const where = `function '${fb.name}' (#${fb.index})`;
      if (fb.maxFuncRef >= nFuncs) {
        this.fail(`${where} calls function #${fb.maxFuncRef}, but the module has ${nFuncs} function(s)`);
      }
      if (fb.maxGlobalRef >= this.globals.length) {
        this.fail(`${where} uses global #${fb.maxGlobalRef}, but the module has ${this.globals.length} global(s)`);
      }
      if (fb.maxTypeRef >= this.types.length) {
        this.fail(`${where} uses type #${fb.maxTypeRef}, but the module has ${this.types.length} type(s)`);
      }
      if (fb.usesMemory && !this.memory) this.fail(`${where} accesses memory, but the module has no memory`);
      if (fb.usesTable && !this.table) this.fail(`${where} uses call_indirect, but the module has no table`);
      for (const g of fb.globalsSet) {
        if (!this.globals[g].mutable) {
          this.fail(`${where} sets global ${this.globals[g].name ?? `#${g}`}, which is immutable`);
        }
      }
    }
    for (const seg of this.data) {
      if (!this.memory) this.fail('data segment without a memory');
      const size = this.memory.min * PAGE_SIZE;
      if (seg.offset + seg.items.length > size) {
        this.fail(
          `data segment at ${seg.offset} (${seg.items.length} bytes) exceeds the memory's initial ${size} bytes`,
        );
      }
    }
  }

  /** What the declaration sections refer to (checked when they are encoded: see build). */
  private checkDeclarations(): void {
    const nFuncs = this.functionCount;
    const seen = new Set<string>();
    const counts = [nFuncs, this.table ? 1 : 0, this.memory ? 1 : 0, this.globals.length];
    for (const e of this.exports) {
      if (seen.has(e.name)) this.fail(`export name '${e.name}' is used twice`);
      seen.add(e.name);
      if (e.index >>> 0 !== e.index || e.index >= counts[e.kind]) {
        this.fail(`export '${e.name}' refers to ${KIND_NAME[e.kind]} #${e.index}, which does not exist`);
      }
    }
    if (this.start !== null) {
      const t = this.typeOfFunc(this.start);
      if (!t) this.fail(`start function #${this.start} does not exist`);
      if (t.params.length !== 0 || t.results.length !== 0) {
        this.fail(`start function #${this.start} must take no parameters and return nothing`);
      }
    }
    for (const seg of this.elements) {
      if (!this.table) this.fail('element segment without a table');
      if (seg.offset + seg.items.length > this.table.min) {
        this.fail(
          `element segment at ${seg.offset} (${seg.items.length} entries) exceeds the table's ${this.table.min} entries`,
        );
      }
      for (const f of seg.items) {
        if (f >>> 0 !== f || f >= nFuncs) this.fail(`element segment at ${seg.offset} names function #${f}, which does not exist`);
      }
    }
  }

  private typeOfFunc(index: number): FuncType | undefined {
    if (index >>> 0 !== index) return undefined;
    if (index < this.imports.length) return this.types[this.imports[index].typeIndex];
    const fb = this.funcs[index - this.imports.length];
    return fb ? this.types[fb.typeIndex] : undefined;
  }

  private checkLimits(what: string, min: number, max: number | undefined, ceiling: number): void {
    if (min >>> 0 !== min || min > ceiling) this.fail(`${what} minimum ${min} is not in [0, ${ceiling}]`);
    if (max !== undefined && (max >>> 0 !== max || max > ceiling || max < min)) {
      this.fail(`${what} maximum ${max} is not in [${min}, ${ceiling}]`);
    }
  }

  private checkInit(label: string, type: ValType, init: number | bigint): void {
    const ok =
      type === 'i32'
        ? typeof init === 'number' && ((init | 0) === init || init >>> 0 === init)
        : typeof init === 'bigint'
          ? init >= -TWO_63 && init < TWO_64
          : Number.isSafeInteger(init);
    if (!ok) this.fail(`global ${label}: initial value ${init} does not fit ${type}`);
  }

  private valTypeBit(t: ValType): number {
    if (VAL_TYPE[t] === undefined) this.fail(`value type '${String(t)}' is not i32 or i64`);
    return t === 'i32' ? 0 : 1;
  }

  private valTypeChar(t: ValType): string {
    if (VAL_TYPE[t] === undefined) this.fail(`value type '${String(t)}' is not i32 or i64`);
    return t === 'i32' ? 'i' : 'I';
  }

  private fail(what: string): never {
    throw new WasmEncodeError(`wasm module${this.options.name ? ` '${this.options.name}'` : ''}: ${what}`);
  }
}

/**
 * A module's own (defined) memory turned into an import of `module.name` with the same limits, the
 * rest unchanged: memory index 0 stays index 0 and function imports keep their indices (a memory
 * import does not enter the function index space), so every instruction and export still means
 * what it meant. A second module made so can run in the first one's memory (the Wasm JIT's
 * size-specialised tier). Throws WasmEncodeError on bytes that do not hold one defined memory.
 */
export function importDefinedMemory(bytes: Uint8Array, module: string, name: string): Uint8Array<ArrayBuffer> {
  const fail = (what: string): never => {
    throw new WasmEncodeError(`cannot import the module's memory: ${what}`);
  };
  const header = MAGIC_AND_VERSION;
  if (bytes.length < header.length || header.some((b, i) => bytes[i] !== b)) fail('not a Wasm 1 module');
  const sections: { id: number; body: Uint8Array }[] = [];
  const r = new ByteReader(bytes, header.length);
  while (r.pos < bytes.length) {
    const id = r.u8();
    const size = r.u32();
    if (r.pos + size > bytes.length) fail(`section ${id} runs past the end of the module`);
    sections.push({ id, body: bytes.subarray(r.pos, r.pos + size) });
    r.pos += size;
  }
  const memAt = sections.findIndex((s) => s.id === Section.Memory);
  if (memAt < 0) fail('it defines no memory');
  const mem = new ByteReader(sections[memAt].body);
  if (mem.u32() !== 1) fail('it does not define exactly one memory');
  const limits = sections[memAt].body.subarray(mem.pos);

  const imp = new ByteWriter(64);
  const oldAt = sections.findIndex((s) => s.id === Section.Import);
  let count = 0;
  let rest: Uint8Array = new Uint8Array(0);
  if (oldAt >= 0) {
    const old = new ByteReader(sections[oldAt].body);
    count = old.u32();
    rest = sections[oldAt].body.subarray(old.pos);
  }
  imp.writeU32(count + 1);
  imp.bytesFrom(rest);
  imp.name(module);
  imp.name(name);
  imp.u8(ExternKind.Memory);
  imp.bytesFrom(limits);
  const importSection = { id: Section.Import as number, body: imp.toBytes() };

  const kept = sections.filter((s) => s.id !== Section.Memory);
  if (oldAt >= 0) kept[kept.findIndex((s) => s.id === Section.Import)] = importSection;
  else {
    // Known sections are ordered by id: the import section goes before the first one after it.
    const after = kept.findIndex((s) => s.id > Section.Import);
    kept.splice(after < 0 ? kept.length : after, 0, importSection);
  }
  const out = new ByteWriter(bytes.length + 32);
  out.bytesFrom(header);
  for (const s of kept) {
    out.u8(s.id);
    out.writeU32(s.body.length);
    out.bytesFrom(s.body);
  }
  return out.toBytes();
}
