// ELF loader against real clang output (Debian clang 14 -mcpu=v3 and clang-19 -mcpu=v4), compiled
// at test time and cross-checked with llvm-objdump-19; then against truncated and corrupted objects.
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isElf, listElfEntries, loadElf } from '../compiler/elf.js';
import { LoadError, type LoadOptions, type Program } from '../compiler/program.js';
import {
  compileBpf, hasClang, objdumpSections, OBJDUMP, removeScratch, scratchPath, type ClangName, type ObjdumpSection,
} from './support/clang.js';

interface Toolchain {
  clang: ClangName;
  mcpu: 'v3' | 'v4';
}

interface Built {
  bytes: Uint8Array;
  dump: Map<string, ObjdumpSection>;
}

const TOOLCHAINS: Toolchain[] = [{ clang: 'clang', mcpu: 'v3' }, { clang: 'clang-19', mcpu: 'v4' }];
const FIXTURES = fileURLToPath(new URL('./fixtures/c/', import.meta.url));
const HELPERS: ReadonlyMap<string, number> = new Map([['femto_now', 101], ['femto_log', 102]]);
const CALL = 0x85;
const LDDW = 0x18;

const cache = new Map<string, Built>();
afterAll(removeScratch);
function build(name: string, tc: Toolchain, extraArgs: string[] = []): Built {
  const key = `${name}.${tc.clang}.${tc.mcpu}${extraArgs.join('')}`;
  let b = cache.get(key);
  if (!b) {
    const out = scratchPath(`${key}.o`);
    const bytes = compileBpf(`${FIXTURES}${name}.c`, { ...tc, out, extraArgs });
    b = { bytes, dump: objdumpSections(out) };
    cache.set(key, b);
  }
  return b;
}

function section(b: Built, name: string): ObjdumpSection {
  const s = b.dump.get(name);
  if (!s) throw new Error(`llvm-objdump shows no section ${name}`);
  return s;
}

function fn(p: Program, name: string): { start: number; end: number } {
  const f = p.functions.find((x) => x.name === name);
  if (!f) throw new Error(`function ${name} not found in ${p.functions.map((x) => x.name).join(', ')}`);
  return f;
}

/** Name of the function containing slot `i`. */
function owner(p: Program, i: number): string {
  return p.functions.find((f) => f.start <= i && i < f.end)?.name ?? '?';
}

/** Local calls of the program as [caller, callee] function names, in slot order. */
function callGraph(p: Program): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < p.insns.length; i++) {
    const insn = p.insns[i];
    if (insn.code === LDDW) i++;
    else if (insn.code === CALL && insn.src === 1) out.push([owner(p, i), owner(p, i + insn.imm + 1)]);
  }
  return out;
}

function cString(bytes: Uint8Array, at: number): string {
  const end = bytes.indexOf(0, at);
  return new TextDecoder().decode(bytes.subarray(at, end < 0 ? bytes.length : end));
}

/**
 * What every loaded program must satisfy, whatever its source. `wellFormed` adds what only holds
 * for uncorrupted objects: every call lands on a function's first instruction.
 */
function checkInvariants(p: Program, wellFormed = true): void {
  expect(p.entry).toBeGreaterThanOrEqual(0);
  expect(p.entry).toBeLessThan(p.insns.length);
  for (let i = 0; i < p.insns.length; i++) {
    const insn = p.insns[i];
    if (insn.code === LDDW) {
      i++;
      continue;
    }
    if (insn.code === CALL && insn.src === 1) {
      const target = i + insn.imm + 1;
      expect(target, `call at ${i}`).toBeGreaterThanOrEqual(0);
      expect(target, `call at ${i}`).toBeLessThan(p.insns.length);
      if (wellFormed) expect(p.functions.some((f) => f.start === target), `call at ${i} lands on a function`).toBe(true);
    }
  }
  for (const r of p.relocs) {
    expect(p.insns[r.slot].code).toBe(LDDW);
    expect(r.slot + 1).toBeLessThan(p.insns.length);
    expect(r.section).toBeLessThan(p.data.length);
    expect(r.addend).toBeGreaterThanOrEqual(0);
    expect(r.addend).toBeLessThanOrEqual(p.data[r.section].bytes.length);
  }
  for (const f of p.functions) {
    expect(f.start).toBeLessThan(f.end);
    expect(f.end).toBeLessThanOrEqual(p.insns.length);
  }
}

/** Functions of the program start where llvm-objdump labels them. */
function checkFunctionsAgainstDump(p: Program, dump: ObjdumpSection, base: number, names: string[]): void {
  for (const name of names) {
    const slot = dump.symbols.get(name);
    expect(slot, `objdump label for ${name}`).toBeDefined();
    expect(fn(p, name).start).toBe(base + (slot ?? -1));
  }
}

function loadError(f: () => unknown): LoadError {
  try {
    f();
  } catch (e) {
    if (e instanceof LoadError) return e;
    throw e;
  }
  throw new Error('expected a LoadError, but loading succeeded');
}

describe('toolchain', () => {
  // setup.sh installs these: a missing tool is a broken setup, so this fails rather than skips.
  it.each(['clang', 'clang-19', OBJDUMP] as const)('%s is installed', (tool) => {
    expect(hasClang(tool)).toBe(true);
  });
});

describe('isElf', () => {
  it('recognises the magic only', () => {
    expect(isElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]))).toBe(true);
    expect(isElf(new Uint8Array([0x7f, 0x45, 0x4c]))).toBe(false);
    expect(isElf(new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0]))).toBe(false);
  });
});

describe.each(TOOLCHAINS)('$clang -mcpu=$mcpu', (tc) => {
  it('recognises the object as ELF', () => {
    expect(isElf(build('calls', tc).bytes)).toBe(true);
  });

  it('.rodata and .rodata.str1.1 strings: relocations point at the right bytes', () => {
    const b = build('rodata_strings', tc);
    const p = loadElf(b.bytes, 'rodata_strings.o');
    checkInvariants(p);
    expect(p.insns.length).toBe(section(b, '.text').slots);
    expect(p.entry).toBe(0);
    expect(p.origin).toBe('rodata_strings.o:.text');
    checkFunctionsAgainstDump(p, section(b, '.text'), 0, ['sum_string', 'pick_string', 'copy_string']);
    expect(fn(p, 'sum_bytes').start).toBeGreaterThan(0);

    const rodata = p.data.findIndex((d) => d.name === '.rodata');
    const str = p.data.findIndex((d) => d.name === '.rodata.str1.1');
    expect(p.data[rodata].writable).toBe(false);
    expect(p.data[str].writable).toBe(false);
    const strings = (sec: number): Set<string> =>
      new Set(p.relocs.filter((r) => r.section === sec).map((r) => cString(p.data[sec].bytes, r.addend)));
    expect(strings(rodata)).toEqual(new Set(['hello, femtojit']));
    expect(strings(str)).toEqual(new Set(['first string', 'and the second', 'third', 'copy me, please']));
    // The address now lives in the reloc alone: the runtime fills in both immediates.
    for (const r of p.relocs) expect([p.insns[r.slot].imm, p.insns[r.slot + 1].imm]).toEqual([0, 0]);
    // sum_string and pick_string both call sum_bytes.
    expect(callGraph(p).filter(([, callee]) => callee === 'sum_bytes').map(([caller]) => caller).sort())
      .toEqual(['pick_string', 'sum_string']);
  });

  it('entry by function name', () => {
    const b = build('rodata_strings', tc);
    const p = loadElf(b.bytes, 'rodata_strings.o', { entry: 'pick_string' });
    expect(p.entry).toBe(section(b, '.text').symbols.get('pick_string'));
    expect(p.entry).toBe(fn(p, 'pick_string').start);
  });

  it('.data holds initialised globals, .bss zeros; relocs name symbol + addend', () => {
    const b = build('globals', tc);
    const p = loadElf(b.bytes, 'globals.o');
    checkInvariants(p);
    expect(p.insns.length).toBe(section(b, '.text').slots);
    checkFunctionsAgainstDump(p, section(b, '.text'), 0, ['bump']);
    const data = p.data.find((d) => d.name === '.data');
    const bss = p.data.find((d) => d.name === '.bss');
    if (!data || !bss) throw new Error(`data sections: ${p.data.map((d) => d.name).join(', ')}`);
    expect(data.writable).toBe(true);
    expect(bss.writable).toBe(true);
    const dv = new DataView(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
    // int counter = 41 at 0; long table[4] = {1, 2, 3, 4} at 8.
    expect(dv.getInt32(0, true)).toBe(41);
    expect([8, 16, 24, 32].map((o) => dv.getBigInt64(o, true))).toEqual([1n, 2n, 3n, 4n]);
    // int zeroed at 0; long scratch[8] at 8.
    expect(bss.bytes.length).toBe(8 + 8 * 8);
    expect(bss.bytes.every((x) => x === 0)).toBe(true);
    const targets = p.relocs.map((r) => `${p.data[r.section].name}+${r.addend}`).sort();
    expect(targets).toEqual(['.bss+0', '.bss+8', '.data+0', '.data+8']);
  });

  it('the data of a loaded program is a copy, not a view of the file', () => {
    const b = build('globals', tc);
    const p = loadElf(b.bytes, 'globals.o');
    const data = p.data.find((d) => d.name === '.data');
    data?.bytes.fill(0xee);
    const again = loadElf(b.bytes, 'globals.o').data.find((d) => d.name === '.data');
    expect(again?.bytes[0]).toBe(41);
  });

  it('local calls: a call chain resolves function to function', () => {
    const b = build('calls', tc);
    const p = loadElf(b.bytes, 'calls.o', { entry: 'entry' });
    checkInvariants(p);
    expect(p.insns.length).toBe(section(b, '.text').slots);
    checkFunctionsAgainstDump(p, section(b, '.text'), 0, ['entry', 'outer', 'middle', 'inner']);
    expect(p.entry).toBe(fn(p, 'entry').start);
    const graph = callGraph(p).map(([a, c]) => `${a}->${c}`).sort();
    expect(graph).toEqual(['entry->inner', 'entry->outer', 'middle->inner', 'middle->inner', 'outer->middle']);
  });

  it('BTF and DWARF sections (-g) change nothing', () => {
    const plain = loadElf(build('calls', tc).bytes, 'calls.o', { entry: 'entry' });
    const debug = build('calls', tc, ['-g']);
    expect(debug.bytes.length).toBeGreaterThan(build('calls', tc).bytes.length);
    const p = loadElf(debug.bytes, 'calls.o', { entry: 'entry' });
    expect(p.insns).toEqual(plain.insns);
    expect(p.functions).toEqual(plain.functions);
    expect(p.data).toEqual(plain.data);
  });

  it('helpers: extern by name through opts.helpers, by number unchanged', () => {
    const b = build('helpers', tc);
    const p = loadElf(b.bytes, 'helpers.o', { helpers: HELPERS });
    checkInvariants(p);
    expect(p.insns.length).toBe(section(b, '.text').slots);
    const calls = p.insns.filter((i) => i.code === CALL);
    expect(calls.map((c) => [c.src, c.imm])).toEqual([[0, 101], [0, 6], [0, 102]]);
  });

  it('helpers: an unknown helper name is a LoadError naming it and its instruction', () => {
    const b = build('helpers', tc);
    const p = loadElf(b.bytes, 'helpers.o', { helpers: HELPERS });
    const logSlot = p.insns.findIndex((i) => i.code === CALL && i.imm === 102);
    const e = loadError(() => loadElf(b.bytes, 'helpers.o', { helpers: new Map([['femto_now', 1]]) }));
    expect(e.message).toContain("'femto_log'");
    expect(e.message).toContain(`instruction ${logSlot}`);
    expect(e.message).toContain('helpers.o');
    expect(loadError(() => loadElf(b.bytes, 'helpers.o')).message).toContain("'femto_now'");
  });

  it('a program section calling into .text', () => {
    const b = build('section_call', tc);
    const prog = section(b, 'prog');
    const text = section(b, '.text');
    const p = loadElf(b.bytes, 'section_call.o');
    checkInvariants(p);
    expect(p.origin).toBe('section_call.o:prog');
    expect(p.entry).toBe(0);
    expect(p.insns.length).toBe(prog.slots + text.slots);
    checkFunctionsAgainstDump(p, prog, 0, ['prog_main']);
    checkFunctionsAgainstDump(p, text, prog.slots, ['square', 'twice', 'add_one']);
    // Covers all three encodings: global symbol (square), section symbol + imm (twice from prog),
    // and an unrelocated pc-relative call inside .text, now at a non-zero base (add_one).
    const graph = callGraph(p).map(([a, c]) => `${a}->${c}`).sort();
    expect(graph).toEqual(['prog_main->square', 'prog_main->twice', 'twice->add_one', 'twice->square']);
  });

  it('an entry in .text does not pull in sections it never calls', () => {
    const b = build('section_call', tc);
    const p = loadElf(b.bytes, 'section_call.o', { entry: 'square' });
    checkInvariants(p);
    expect(p.insns.length).toBe(section(b, '.text').slots);
    expect(p.functions.map((f) => f.name).sort()).toEqual(['add_one', 'square', 'twice']);
    expect(callGraph(p).map(([a, c]) => `${a}->${c}`).sort()).toEqual(['twice->add_one', 'twice->square']);
  });

  it('several program sections: listing and entry selection', () => {
    const b = build('multi', tc);
    expect(listElfEntries(b.bytes)).toEqual([
      { name: '.text', kind: 'section' }, { name: 'xdp', kind: 'section' },
      { name: 'classifier', kind: 'section' }, { name: 'prog', kind: 'section' },
      { name: 'shared_helper', kind: 'function' }, { name: 'xdp_main', kind: 'function' },
      { name: 'tc_main', kind: 'function' }, { name: 'prog_main', kind: 'function' },
    ]);
    const text = section(b, '.text').slots;
    const cases: [LoadOptions, string, number][] = [
      [{}, 'xdp', section(b, 'xdp').slots + text],
      [{ entry: 'xdp' }, 'xdp', section(b, 'xdp').slots + text],
      [{ entry: 'classifier' }, 'classifier', section(b, 'classifier').slots + text],
      [{ entry: 'tc_main' }, 'classifier', section(b, 'classifier').slots + text],
      [{ entry: 'prog' }, 'prog', section(b, 'prog').slots],
      [{ entry: 'shared_helper' }, '.text', text],
    ];
    for (const [opts, sec, count] of cases) {
      const p = loadElf(b.bytes, 'multi.o', opts);
      checkInvariants(p);
      expect(p.origin, JSON.stringify(opts)).toBe(`multi.o:${sec}`);
      expect(p.insns.length, JSON.stringify(opts)).toBe(count);
      expect(p.entry).toBe(0);
    }
    const tc1 = loadElf(b.bytes, 'multi.o', { entry: 'tc_main' });
    expect(callGraph(tc1)).toEqual([['tc_main', 'shared_helper']]);
    const e = loadError(() => loadElf(b.bytes, 'multi.o', { entry: 'nope' }));
    expect(e.message).toContain("'nope'");
    expect(e.message).toContain('xdp (section)');
    expect(e.message).toContain('tc_main (function)');
  });

  it('taking the address of code is refused', () => {
    const b = build('code_addr', tc);
    const e = loadError(() => loadElf(b.bytes, 'code_addr.o'));
    expect(e.message).toMatch(/instruction \d+ \(lddw %r0, 0x0\): loading the address of code \('target' in '\.text'\)/);
  });

  it('an object without code has no entry', () => {
    const b = build('data_only', tc);
    expect(listElfEntries(b.bytes)).toEqual([]);
    expect(loadError(() => loadElf(b.bytes, 'data_only.o')).message).toMatch(/^data_only\.o: no program code/);
    expect(loadError(() => loadElf(b.bytes, 'data_only.o', { entry: 'answer' })).message).toMatch(/available entries: none/);
  });

  it('maps are refused', () => {
    const b = build('maps', tc);
    for (const entry of ['.text', 'prog']) {
      expect(loadError(() => loadElf(b.bytes, 'maps.o', { entry })).message).toMatch(/maps are not supported/);
    }
  });
});

// ---- Malformed objects -------------------------------------------------------------------------

/** Field locations in a well-formed object, found without the loader's own reader. */
interface Layout {
  shoff: number;
  sections: { at: number; type: number; offset: number; size: number; name: string }[];
}

function layout(bytes: Uint8Array): Layout {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shnum = dv.getUint16(60, true);
  const shstr = shoff + dv.getUint16(62, true) * 64;
  const strOff = Number(dv.getBigUint64(shstr + 24, true));
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * 64;
    sections.push({
      at, type: dv.getUint32(at + 4, true), offset: Number(dv.getBigUint64(at + 24, true)),
      size: Number(dv.getBigUint64(at + 32, true)), name: cString(bytes, strOff + dv.getUint32(at, true)),
    });
  }
  return { shoff, sections };
}

type Width = 1 | 2 | 4 | 8;
function patch(bytes: Uint8Array, at: number, width: Width, value: bigint): Uint8Array {
  const copy = bytes.slice();
  const dv = new DataView(copy.buffer);
  const v = BigInt.asUintN(width * 8, value);
  if (width === 1) dv.setUint8(at, Number(v));
  else if (width === 2) dv.setUint16(at, Number(v), true);
  else if (width === 4) dv.setUint32(at, Number(v), true);
  else dv.setBigUint64(at, v, true);
  return copy;
}

function read(bytes: Uint8Array, at: number, width: Width): bigint {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (width === 1) return BigInt(dv.getUint8(at));
  if (width === 2) return BigInt(dv.getUint16(at, true));
  if (width === 4) return BigInt(dv.getUint32(at, true));
  return dv.getBigUint64(at, true);
}

type Outcome = 'ok' | 'LoadError';
/** Loads a corrupt object: it must load (and then be consistent) or throw LoadError. */
function survive(bytes: Uint8Array, what: string, opts: LoadOptions = { helpers: HELPERS }): Outcome {
  let p: Program;
  try {
    p = loadElf(bytes, 'corrupt.o', opts);
  } catch (e) {
    if (e instanceof LoadError) {
      expect(e.message.startsWith('corrupt.o: '), `${what}: ${e.message}`).toBe(true);
      return 'LoadError';
    }
    throw new Error(`${what}: threw ${String(e)} instead of a LoadError`);
  }
  checkInvariants(p, false);
  return 'ok';
}

function fieldValues(orig: bigint, fileLength: number): bigint[] {
  const n = BigInt(fileLength);
  return [0n, 1n, 3n, 7n, 8n, 0xffn, 0xffffn, 0x7fffffffn, 0xffffffffn, 0x7fffffffffffffffn, -1n,
    n - 1n, n, n + 1n, orig + 1n, orig - 1n, orig + 8n, orig - 8n, orig * 2n];
}

describe.each(TOOLCHAINS)('malformed objects from $clang -mcpu=$mcpu', (tc) => {
  const objects = ['calls', 'globals', 'section_call', 'helpers', 'rodata_strings'] as const;

  it.each(objects)('%s truncated at every length is a LoadError', (name) => {
    const { bytes } = build(name, tc);
    for (let len = 0; len < bytes.length; len++) {
      const cut = bytes.slice(0, len);
      // The section header table is the last thing clang writes, so no prefix is a whole object.
      expect(survive(cut, `truncated to ${len}`), `truncated to ${len}`).toBe('LoadError');
    }
  });

  it.each(objects)('%s with corrupted header, section, symbol and relocation fields', (name) => {
    const { bytes } = build(name, tc);
    const lay = layout(bytes);
    const fields: [string, number, Width][] = [
      ['e_ident class', 4, 1], ['e_ident data', 5, 1], ['e_type', 16, 2], ['e_machine', 18, 2],
      ['e_shoff', 40, 8], ['e_shentsize', 58, 2], ['e_shnum', 60, 2], ['e_shstrndx', 62, 2],
    ];
    for (const s of lay.sections) {
      const at = s.at;
      fields.push([`${s.name} sh_name`, at, 4], [`${s.name} sh_type`, at + 4, 4], [`${s.name} sh_flags`, at + 8, 8],
        [`${s.name} sh_offset`, at + 24, 8], [`${s.name} sh_size`, at + 32, 8], [`${s.name} sh_link`, at + 40, 4],
        [`${s.name} sh_info`, at + 44, 4]);
      if (s.type === 2) {
        for (let i = 0; i < s.size / 24; i++) {
          const sym = s.offset + i * 24;
          fields.push([`symbol ${i} st_name`, sym, 4], [`symbol ${i} st_info`, sym + 4, 1],
            [`symbol ${i} st_shndx`, sym + 6, 2], [`symbol ${i} st_value`, sym + 8, 8]);
        }
      }
      if (s.type === 9) {
        for (let i = 0; i < s.size / 16; i++) {
          const rel = s.offset + i * 16;
          fields.push([`${s.name} rel ${i} r_offset`, rel, 8], [`${s.name} rel ${i} r_info type`, rel + 8, 4],
            [`${s.name} rel ${i} r_info sym`, rel + 12, 4]);
        }
      }
    }
    const outcomes = { ok: 0, LoadError: 0 };
    for (const [what, at, width] of fields) {
      for (const v of fieldValues(read(bytes, at, width), bytes.length)) {
        const corrupt = patch(bytes, at, width, v);
        outcomes[survive(corrupt, `${what} = ${v}`)]++;
        outcomes[survive(corrupt, `${what} = ${v} (no helpers)`, {})]++;
      }
    }
    expect(outcomes.LoadError).toBeGreaterThan(fields.length);
    expect(outcomes.ok).toBeGreaterThan(0);
  });

  it('random byte corruption never escapes as anything but LoadError', () => {
    const { bytes } = build('section_call', tc);
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let k = 0; k < 3000; k++) {
      const copy = bytes.slice();
      const flips = 1 + rand(4);
      for (let j = 0; j < flips; j++) copy[rand(copy.length)] = rand(256);
      survive(copy, `random corruption #${k}`);
    }
  });

  it('specific corruptions give specific messages', () => {
    const { bytes } = build('calls', tc);
    const lay = layout(bytes);
    const text = lay.sections.find((s) => s.name === '.text');
    const rel = lay.sections.find((s) => s.type === 9 && s.name === '.rel.text');
    const symtab = lay.sections.find((s) => s.type === 2);
    if (!text || !rel || !symtab) throw new Error('unexpected layout');
    const outerSym = Array.from({ length: symtab.size / 24 }, (_, i) => symtab.offset + i * 24)
      .find((at) => read(bytes, at + 4, 1) === 0x12n && read(bytes, at + 8, 8) === 0n);
    if (outerSym === undefined) throw new Error('no global function at 0');
    const cases: [string, Uint8Array, RegExp][] = [
      ['bad magic', patch(bytes, 1, 1, 0x46n), /not an ELF/],
      ['32-bit class', patch(bytes, 4, 1, 1n), /64-bit/],
      ['big-endian', patch(bytes, 5, 1, 2n), /little-endian/],
      ['x86-64 machine', patch(bytes, 18, 2, 62n), /machine 62 is not BPF/],
      ['executable type', patch(bytes, 16, 2, 2n), /not a relocatable object/],
      ['e_shoff past the end', patch(bytes, 40, 8, BigInt(bytes.length)), /section header table .* extends past the end/],
      ['e_shstrndx out of range', patch(bytes, 62, 2, 99n), /string table index 99/],
      ['.text sh_offset past the end', patch(bytes, text.at + 24, 8, BigInt(bytes.length)), /section \[\d+\] .* extends past the end/],
      ['.text size not whole slots', patch(bytes, text.at + 32, 8, BigInt(text.size - 4)), /'\.text': size \d+ is not a whole number/],
      ['r_offset inside an instruction', patch(bytes, rel.offset, 8, read(bytes, rel.offset, 8) + 4n), /relocation 0 .*not an instruction/],
      ['r_offset past the section', patch(bytes, rel.offset, 8, BigInt(text.size)), /relocation 0 .*not an instruction/],
      ['r_info symbol out of range', patch(bytes, rel.offset + 12, 4, 999n), /symbol index 999 is out of range/],
      ['r_info unknown type', patch(bytes, rel.offset + 8, 4, 2n), /R_BPF_64_ABS64 is not supported in code/],
      ['relocated call on a non-call', patch(bytes, text.offset + Number(read(bytes, rel.offset, 8)), 1, 0xb7n), /not a call/],
      ['symbol in a missing section', patch(bytes, outerSym + 6, 2, 200n), /refers to section 200, which does not exist/],
      ['symbol name outside strtab', patch(bytes, outerSym, 4, 0xffffffn), /symbol \d+: string offset/],
    ];
    for (const [what, corrupt, re] of cases) {
      const e = loadError(() => loadElf(corrupt, 'calls.o', { entry: 'entry' }));
      expect(e.message, what).toMatch(re);
      expect(e.message.startsWith('calls.o: '), what).toBe(true);
    }
  });
});

