// The Thumb back end below the board: instruction selection for small IR snippets checked through
// capstone's disassembly (ALU32 with hiDead is one instruction, 64-bit sequences use the promised
// instructions), the image format (round trip and every refusal), the ABI constants shared with the
// C runtime, and the AOT outputs (`--emit asm`, `--emit c`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIr } from '../compiler/ir/text.js';
import { assembleProgram } from '../compiler/asm.js';
import { OFF, REGION, REGION_SIZE, FRAME_SIZE, MAX_REGIONS, MAX_VREGS, slotOf, STATUS } from '../backends/thumb/abi.js';
import { compileThumb, compileThumbAot, thumbFacts } from '../backends/thumb/aot.js';
import { ThumbDisassembler, type ThumbInsn } from '../backends/thumb/disasm.js';
import { cHeader, cSource, EmitError } from '../backends/thumb/emit.js';
import { crc32, expectedBases, H, HEADER_SIZE, ImageError, readImage, writeImage, type ImageContents } from '../backends/thumb/image.js';
import { lowerModule, type LoweredModule } from '../backends/thumb/lower.js';
import { halfKey, HOME_REGS, loopDepths } from '../backends/thumb/regalloc.js';
import { FAULT_CODES } from '../runtime/errors.js';
import { ROOT } from './support/paths.js';

let dis: ThumbDisassembler;
beforeAll(async () => {
  dis = await ThumbDisassembler.create();
});

const NAMES = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'sb', 'sl', 'fp', 'ip', 'sp', 'lr', 'pc'];

interface Lowered {
  low: LoweredModule;
  /** Disassembly of the code of IR instruction `i` ('t': the terminator) of block `b` (0) of function 0. */
  inst(i: number | 't', b?: number): ThumbInsn[];
  /** Capstone name of the home register of a half. */
  home(reg: number, half: 0 | 1): string;
}

function lower(body: string, header = ''): Lowered {
  const m = parseIr(`origin "test"\n${header}function main (start 0) {\nb0:\n${body}\n}\n`);
  const low = lowerModule(m);
  const all = dis.disasm(low.code, 0, low.data);
  const marks = low.marks.filter((mk) => mk.where.startsWith('f0.'));
  return {
    low,
    inst(i: number | 't', b = 0): ThumbInsn[] {
      const k = marks.findIndex((mk) => mk.where === `f0.b${b}.${i}`);
      const start = marks[k].offset;
      const end = k + 1 < marks.length ? marks[k + 1].offset : low.functions.length > 1 ? low.functions[1] : low.code.length;
      return all.filter((x) => x.address >= start && x.address < end);
    },
    home(reg, half) {
      const r = low.alloc.homes.get(halfKey(reg, half));
      if (r === undefined) throw new Error(`r${reg}.${half} has no home`);
      return NAMES[r];
    },
  };
}

const texts = (xs: ThumbInsn[]): string[] => xs.map((x) => x.text);

/**
 * IR instruction 0 of the snippets: r1 gets a value the back end cannot know (a constant would be
 * folded into immediates, and the entry's r1 has a known zero upper half).
 */
const UNKNOWN_R1 = '  r1 = load.u64 r10-8 [check] ; @0\n';
const mnemonics = (xs: ThumbInsn[]): string[] => xs.map((x) => x.mnemonic.replace(/\.w$/, ''));

describe('ALU32 lowering: one instruction per eBPF instruction when the upper half is dead', () => {
  const OPS: Array<[string, string[]]> = [
    ['add.32 r0, r1', ['adds', 'add']],
    ['sub.32 r0, r1', ['subs', 'sub']],
    ['and.32 r0, r1', ['ands', 'and']],
    ['or.32 r0, r1', ['orrs', 'orr']],
    ['xor.32 r0, r1', ['eors', 'eor']],
    ['mul.32 r0, r1', ['muls', 'mul']],
    ['add.32 r0, 7', ['adds', 'add']],
    ['sub.32 r0, 100', ['subs', 'sub']],
    ['and.32 r0, 255', ['ands', 'and']],
    ['xor.32 r0, 0xff00', ['eors', 'eor']],
    ['shl.32 r0, 3', ['lsls', 'lsl']],
    ['lshr.32 r0, 31', ['lsrs', 'lsr']],
    ['ashr.32 r0, 5', ['asrs', 'asr']],
    ['udiv.32 r0, 10', []],
  ];
  it.each(OPS)('r0.lo = %s', (op, allowed) => {
    const l = lower(`${UNKNOWN_R1}  r0.lo = ${op} ; @1\n  ret ; @2`);
    const code = l.inst(1);
    if (op.startsWith('udiv')) {
      // A constant divisor is materialised, then one UDIV: no zero test is needed.
      expect(mnemonics(code)).toEqual(['mov', 'udiv']);
      return;
    }
    expect(code).toHaveLength(1);
    expect(allowed).toContain(mnemonics(code)[0]);
    expect(code[0].opStr).toContain(l.home(0, 0));
  });

  it('writes a zero upper half when it is live (two instructions)', () => {
    // At b2 r0's upper half is the loaded one or 0: unknown, so b1 must write its 0.
    const l = lower(`${UNKNOWN_R1}  r0 = load.u64 r10-16 [check] ; @1\n  br.eq.64 r1, 0, b1, b2 ; @2\nb1:\n  r0 = add.32 r0, r1 ; @3\n  jump b2 ; @4\nb2:\n  ret ; @5`);
    expect(mnemonics(l.inst(0, 1))).toEqual(['adds', 'movs']);
    expect(texts(l.inst(0, 1))[1]).toBe(`movs ${l.home(0, 1)}, #0`);
  });

  it('leaves a zero upper half unwritten when every reader knows it (the exit writes it)', () => {
    const l = lower(`${UNKNOWN_R1}  r0 = add.32 r0, r1 ; @1\n  ret ; @2`);
    expect(mnemonics(l.inst(1))).toEqual(['adds']);
    expect(l.low.alloc.homes.has(halfKey(0, 1))).toBe(false);
    expect(l.low.alloc.eliminated.has(halfKey(0, 1))).toBe(true);
    expect(texts(l.inst('t')).slice(0, 2)).toEqual(['mov.w ip, #0', `str.w ip, [sp, #0x${slotOf(0, 1).toString(16)}]`]);
  });

  it('masks a register shift count to 5 bits (AND + shift)', () => {
    const l = lower(`${UNKNOWN_R1}  r0.lo = shl.32 r0, r1 ; @1\n  ret ; @2`);
    expect(mnemonics(l.inst(1))).toEqual(['ands', 'lsls']);
    expect(texts(l.inst(1))[0]).toMatch(/#0x1f$/);
  });

  it('tests a register divisor for zero before UDIV (RFC 9669: x / 0 = 0, x % 0 = x)', () => {
    const div = lower(`${UNKNOWN_R1}  r0.lo = udiv.32 r0, r1 ; @1\n  ret ; @2`);
    expect(mnemonics(div.inst(1))).toEqual(['cmp', 'ite', 'moveq', 'udivne']);
    const rem = lower(`${UNKNOWN_R1}  r0.lo = srem.32 r0, r1 ; @1\n  ret ; @2`);
    expect(mnemonics(rem.inst(1))).toEqual(['cmp', 'itee', 'moveq', 'sdivne', 'mlsne']);
  });
});

describe('64-bit sequences', () => {
  const body = (op: string): string => `${UNKNOWN_R1}  r0 = ${op} ; @1\n  ret ; @2`;

  it('add/sub carry through ADDS/ADC and SUBS/SBC', () => {
    const add = lower(body('add.64 r0, r1'));
    expect(mnemonics(add.inst(1))).toEqual(['adds', 'adc']);
    expect(texts(add.inst(1))[1]).toMatch(new RegExp(`^adc(\\.w)? ${add.home(0, 1)}, ${add.home(0, 1)}, ${add.home(1, 1)}$`));
    expect(mnemonics(lower(body('sub.64 r0, r1')).inst(1))).toEqual(['subs', 'sbc']);
    // A negative immediate is subtracted: the same carry chain without a 64-bit constant.
    expect(mnemonics(lower(body('add.64 r0, -5')).inst(1))).toEqual(['subs', 'sbc']);
  });

  it('multiplies with the cross terms and UMULL', () => {
    expect(mnemonics(lower(body('mul.64 r0, r1')).inst(1))).toEqual(['mul', 'mla', 'umull', 'add']);
  });

  it('shifts by a constant below and above 32', () => {
    expect(mnemonics(lower(body('shl.64 r0, 4')).inst(1))).toEqual(['lsls', 'orr', 'lsls']);
    // The upper half is known 0 afterwards: only the exit writes it.
    expect(mnemonics(lower(body('lshr.64 r0, 40')).inst(1))).toEqual(['lsrs']);
    expect(mnemonics(lower(body('ashr.64 r0, 40')).inst(1))).toEqual(['asrs', 'asrs']);
  });

  it('shifts by a register with the <32 / >=32 split', () => {
    const code = mnemonics(lower(body('ashr.64 r0, r1')).inst(1));
    expect(code).toContain('and');
    expect(code).toContain('itt');
    expect(code).toContain('asrpl');
  });

  it('divides through the runtime unless both upper halves are 0', () => {
    const l = lower(body('udiv.64 r0, r1'));
    const code = mnemonics(l.inst(1));
    expect(code.slice(0, 3)).toEqual(['orrs', 'bne', 'cmp']);
    expect(code).toContain('udivne');
    const all = dis.disasm(l.low.code).map((x) => x.text);
    expect(all).toContain(`ldr.w ip, [sp, #0x${OFF.DIV64_FN.toString(16)}]`);
    expect(all).toContain('blx ip');
  });

  it('negates with RSBS and SBC, byte-swaps with REV, sign-extends with SXTB/ASR', () => {
    expect(mnemonics(lower('  r0 = neg.64 r0 ; @0\n  ret ; @1').inst(0))).toEqual(['rsbs', 'sbc']);
    expect(mnemonics(lower('  r0 = bswap64 r0 ; @0\n  ret ; @1').inst(0))).toEqual(['rev', 'rev', 'mov']);
    expect(mnemonics(lower('  r0.lo = bswap32 r0 ; @0\n  ret ; @1').inst(0))).toEqual(['rev']);
    expect(mnemonics(lower('  r0 = sext8.64 r0 ; @0\n  ret ; @1').inst(0))).toEqual(['sxtb', 'asrs']);
  });
});

describe('compares and branches', () => {
  const br = (cond: string, b = 'r1'): string[] => {
    const l = lower(`${UNKNOWN_R1}  br.${cond} r0, ${b}, b1, b2 ; @1\nb1:\n  ret ; @2\nb2:\n  ret ; @3`);
    const marks = l.low.marks;
    const k = marks.findIndex((mk) => mk.where === 'f0.b0.t');
    const code = dis.disasm(l.low.code).filter((x) => x.address >= marks[k].offset && x.address < marks[k + 1].offset);
    return mnemonics(code);
  };

  it('64-bit equality compares both halves under an IT', () => {
    expect(br('eq.64')).toEqual(['cmp', 'it', 'cmpeq', 'bne']);
  });

  it('64-bit unsigned compares with CMP and SBCS (a > b as b < a)', () => {
    expect(br('ult.64')).toEqual(['cmp', 'sbcs', 'bhs']);
    expect(br('ugt.64')).toEqual(['cmp', 'sbcs', 'bhs']);
    // a > 7 is a >= 8
    expect(br('ugt.64', '7')).toEqual(['cmp', 'sbcs', 'blo']);
  });

  it('64-bit signed compares with CMP and SBCS', () => {
    expect(br('slt.64')).toEqual(['cmp', 'sbcs', 'bge']);
    expect(br('sgt.64', '7')).toEqual(['cmp', 'sbcs', 'blt']);
  });

  it('32-bit compares are one CMP (or TST for jset)', () => {
    expect(br('ugt.32')).toEqual(['cmp', 'bls']);
    expect(br('set.32', '8')).toEqual(['tst', 'beq']);
  });
});

describe('memory accesses', () => {
  it('reads the current frame through r10 directly: no check, two instructions', () => {
    const l = lower('  r0 = load.u64 r10-8 [check] ; @0\n  ret ; @1');
    const code = texts(l.inst(0));
    expect(code[0]).toBe(`ldr.w fp, [sp, #0x${OFF.FP_PHYS.toString(16)}]`);
    expect(code.slice(1)).toEqual([`ldr.w ${l.home(0, 0)}, [fp, #0x1f8]`, `ldr.w ${l.home(0, 1)}, [fp, #0x1fc]`]);
  });

  it('checks an unproven access inline against the region it points into', () => {
    const l = lower(`${UNKNOWN_R1}  r0 = load.u32 r1+4 [check mem] ; @1\n  ret ; @2`);
    const code = mnemonics(l.inst(1));
    const cnt = OFF.REGIONS + REGION_SIZE * 1 + REGION.CNT + 4 * 2;
    const host = OFF.REGIONS + REGION_SIZE * 1 + REGION.HOST;
    // offset from the region base, against the count and, through SBCS, the upper half; then the access
    expect(code.slice(-6)).toEqual(['ldr', 'cmp', 'sbcs', 'bhs', 'ldr', 'ldr']);
    expect(texts(l.inst(1))).toContain(`ldr.w sl, [sp, #0x${cnt.toString(16)}]`);
    expect(texts(l.inst(1))).toContain(`sbcs lr, ${l.home(1, 1)}, #0`);
    expect(texts(l.inst(1)).at(-2)).toBe(`ldr.w fp, [sp, #0x${host.toString(16)}]`);
    expect(texts(l.inst(1)).at(-1)).toBe(`ldr.w ${l.home(0, 0)}, [fp, ip]`);
    expect(l.low.sites.length).toBeGreaterThan(0);
  });

  it('skips the upper-half test of a pointer known to be below 2^32', () => {
    // The entry's r1 is the context address: a 32-bit number.
    const l = lower('  r0 = load.u32 r1+0 [check mem] ; @0\n  ret ; @1');
    expect(mnemonics(l.inst(0))).toEqual(['sub', 'ldr', 'cmp', 'bhs', 'ldr', 'ldr']);
  });

  it('loads the region count and host once for consecutive accesses in a block', () => {
    const l = lower('  r0 = load.u32 r1+0 [check mem] ; @0\n  r4 = load.u32 r1+8 [check mem] ; @1\n  r0 = add.32 r0, r4 ; @2\n  ret ; @3');
    expect(mnemonics(l.inst(0)).filter((m) => m === 'ldr')).toHaveLength(3);
    const second = mnemonics(l.inst(1));
    expect(second.filter((m) => m === 'ldr')).toHaveLength(1);
    expect(second).toEqual(['add', 'sub', 'cmp', 'bhs', 'ldr']);
  });

  it('translates a proven access with the region delta and no compare', () => {
    const l = lower('  r0.lo = load.u8 r1+0 [proven mem] ; @0\n  ret ; @1');
    expect(mnemonics(l.inst(0))).toEqual(['ldr', 'ldrb']);
    const delta = OFF.REGIONS + REGION_SIZE * 1 + REGION.DELTA;
    expect(texts(l.inst(0))[0]).toBe(`ldr.w fp, [sp, #0x${delta.toString(16)}]`);
    // [delta, address]: the addition happens in the load
    expect(texts(l.inst(0))[1]).toBe(`ldrb.w ${l.home(0, 0)}, [fp, ${l.home(1, 0)}]`);
  });

  it('uses LDREX/STREX for aligned 32-bit atomics and masks interrupts for 64-bit ones', () => {
    const a32 = lower('  atomic.add.32 r10-8, r1 [check] ; @0\n  ret ; @1');
    const m32 = mnemonics(a32.inst(0));
    expect(m32).toContain('ldrex');
    expect(m32).toContain('strex');
    const a64 = lower('  atomic.add.64 r10-8, r1 [check] ; @0\n  ret ; @1');
    const m64 = mnemonics(a64.inst(0));
    expect(m64).toEqual(expect.arrayContaining(['mrs', 'cpsid', 'adds', 'adc', 'msr']));
    expect(texts(a64.inst(0))).toContain('mrs sl, primask');
  });
});

describe('register allocation', () => {
  it('gives homes to the halves used most inside loops', () => {
    const m = parseIr(`origin "t"
function main (start 0) {
b0:
  r7 = const 0x1 ; @0
  jump b1 ; @1
b1:
  r3.lo = add.32 r3, r4 ; @2
  r4.lo = add.32 r4, 1 ; @3
  br.ult.32 r4, 100, b1, b2 ; @4
b2:
  ret ; @5
}
`);
    expect(loopDepths(m.functions[0])).toEqual([0, 1, 0]);
    const low = lowerModule(m);
    expect(low.alloc.homes.get(halfKey(4, 0))).toBe(HOME_REGS[0]);
    expect(low.alloc.homes.has(halfKey(3, 0))).toBe(true);
    // 32-bit code never mentions r3/r4's upper halves: they take no home.
    expect(low.alloc.homes.has(halfKey(4, 1))).toBe(false);
  });
});

describe('the image format', () => {
  const contents = (): ImageContents => {
    const bases = expectedBases([5, 3]);
    return {
      code: Uint8Array.from([0x70, 0x47, 0x00, 0xbf]),
      entry: 0,
      sites: [{ offset: 2, pc: 7 }, { offset: 4, pc: 9 }],
      sections: [
        { name: 'section0', vbase: bases.sections[0], bytes: Uint8Array.from([1, 2, 3, 4, 5]), writable: false },
        { name: 'section1', vbase: bases.sections[1], bytes: Uint8Array.from([9, 8, 7]), writable: true },
      ],
      helpers: [5, 1000],
      nregs: 11,
      memBase: bases.mem,
    };
  };

  it('round-trips', () => {
    const c = contents();
    const back = readImage(writeImage(c));
    expect(back).toEqual(c);
  });

  it('stores a zlib-compatible CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  /** Rewrites one u32 (or u16) of a valid image and recomputes its checksum. */
  const patched = (at: number, value: number, width: 2 | 4 = 4, fixCrc = true): Uint8Array => {
    const img = writeImage(contents());
    const v = new DataView(img.buffer);
    if (width === 4) v.setUint32(at, value, true);
    else v.setUint16(at, value, true);
    if (fixCrc) {
      v.setUint32(H.CRC, 0, true);
      v.setUint32(H.CRC, crc32(img), true);
    }
    return img;
  };

  const REFUSALS: Array<[string, () => Uint8Array, RegExp]> = [
    ['short', () => writeImage(contents()).slice(0, 40), /shorter than the 64-byte header/],
    ['magic', () => patched(H.MAGIC, 0x464c457f), /bad magic/],
    ['version', () => patched(H.VERSION, 2, 2), /unsupported version 2/],
    ['header size', () => patched(H.HEADER_SIZE, 60, 2), /header size 60/],
    ['size', () => writeImage(contents()).slice(0, -4), /the header says \d+ bytes, the image has/],
    ['checksum', () => { const i = writeImage(contents()); i[HEADER_SIZE] ^= 1; return i; }, /checksum mismatch/],
    ['code offset', () => patched(H.CODE_OFF, 66), /code offset 66/],
    ['code size', () => patched(H.CODE_SIZE, 0x10000), /code .* extends past the end/],
    ['entry', () => patched(H.ENTRY, 4), /entry offset 4/],
    ['sites beyond the image', () => patched(H.SITES_COUNT, 0x1000000), /fault-site table .* extends past/],
    ['unsorted sites', () => { const img = patched(HEADER_SIZE + 4, 4, 4, false); const v = new DataView(img.buffer); v.setUint32(H.CRC, 0, true); v.setUint32(H.CRC, crc32(img), true); return img; }, /not sorted/],
    ['too many sections', () => patched(H.SECTIONS_COUNT, MAX_REGIONS), /data sections; the runtime holds at most/],
    ['helpers', () => patched(H.HELPERS_COUNT, 100000), /helper imports/],
    ['registers', () => patched(H.NREGS, MAX_VREGS + 1), /register slots/],
    ['stack base', () => patched(H.STACK_BASE, 0x20000), /stack base/],
    ['context base', () => patched(H.MEM_BASE, 0x40000), /context base/],
  ];
  it.each(REFUSALS)('refuses a bad %s', (_name, make, why) => {
    expect(() => readImage(make())).toThrow(ImageError);
    expect(() => readImage(make())).toThrow(why);
  });

  it('refuses a section placed against the layout', () => {
    const c = contents();
    c.sections[1].vbase += 0x1000;
    expect(() => readImage(writeImage(c))).toThrow(/section 1 is at 0x\w+, the layout puts it at/);
  });
});

describe('the contract with the C runtime', () => {
  const fcH = readFileSync(join(ROOT, 'runtime', 'cortex-m', 'fc', 'fc.h'), 'utf8');
  const define = (name: string): number => {
    const m = new RegExp(`#define ${name} (\\w+)`).exec(fcH);
    if (m === null) throw new Error(`fc.h does not define ${name}`);
    return Number(m[1].replace(/u$/, ''));
  };

  it('fc.h has the run-state offsets abi.ts generates code for', () => {
    for (const [k, v] of Object.entries(OFF)) expect({ k, v: define(`FC_OFF_${k}`) }).toEqual({ k, v });
    expect(define('FC_REGION_SIZE')).toBe(REGION_SIZE);
    expect(define('FC_FRAME_SIZE')).toBe(FRAME_SIZE);
    expect(define('FC_MAX_REGIONS')).toBe(MAX_REGIONS);
    expect(define('FC_MAX_VREGS')).toBe(MAX_VREGS);
    expect(define('FC_STATUS_STOP')).toBe(STATUS.STOP);
  });

  it('fc.h status codes are runtime/errors.ts FAULT_CODES', () => {
    const names: Record<string, string> = {
      'out-of-bounds': 'FC_OUT_OF_BOUNDS', permission: 'FC_PERMISSION', budget: 'FC_BUDGET', 'unknown-helper': 'FC_UNKNOWN_HELPER',
      helper: 'FC_HELPER', 'call-depth': 'FC_CALL_DEPTH', invalid: 'FC_INVALID',
    };
    for (const [kind, code] of Object.entries(FAULT_CODES)) {
      expect(new RegExp(`${names[kind]} = ${code},`).test(fcH)).toBe(true);
    }
  });
});

describe('ahead-of-time outputs', () => {
  const prog = assembleProgram('mov %r0, 1\nldxw %r2, [%r1+0]\nadd %r0, %r2\nexit\n', 'aot.s');

  it('--emit image is the image compileThumb builds, and it validates', async () => {
    const img = (await compileThumbAot(prog, { emit: 'image' })) as Uint8Array;
    const back = readImage(img);
    expect(back.code).toEqual(compileThumb(prog, thumbFacts(prog)).code);
    expect(back.sites.length).toBeGreaterThan(0);
  });

  it('--emit asm interleaves eBPF, IR and Thumb', async () => {
    const text = (await compileThumbAot(prog, { emit: 'asm' })) as string;
    expect(text).toMatch(/;\s+1: ldxw %r2, \[%r1\+0\]/);
    expect(text).toMatch(/;\s+r2 = load\.u32 r1\+0 \[check mem\]/);
    expect(text).toMatch(/^[0-9a-f]{8}:\s+(ldrb?|ldr\.w) /m);
    expect(text).toMatch(/faults at eBPF 1/);
  });

  it('--emit c defines an aligned array holding the image bytes', async () => {
    const img = (await compileThumbAot(prog, { emit: 'image' })) as Uint8Array;
    const src = (await compileThumbAot(prog, { emit: 'c', name: 'my_prog' })) as string;
    expect(src).toContain(`__attribute__((aligned(4))) const uint8_t my_prog[${img.length}] = {`);
    const bytes = [...src.matchAll(/0x([0-9a-f]{2})/g)].map((m) => parseInt(m[1], 16));
    expect(Uint8Array.from(bytes)).toEqual(img);
    expect(cHeader('my_prog')).toContain('extern const uint8_t my_prog[];');
  });

  it('refuses a C name that is not an identifier', () => {
    expect(() => cSource(new Uint8Array(4), '2bad', 'x')).toThrow(EmitError);
    expect(() => cSource(new Uint8Array(4), '2bad', 'x')).toThrow(/'2bad' is not a C identifier/);
  });

  it('maps every IR instruction to a code offset', () => {
    const c = compileThumb(prog);
    // The constant of slot 0 is folded into slot 2 by the IR passes; every other slot has code.
    expect(c.map.map((x) => x.pc)).toEqual(expect.arrayContaining([1, 2, 3]));
    for (const x of c.map) expect(x.offset).toBeLessThan(c.code.length);
  });
});
