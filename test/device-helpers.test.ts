// The femto-container helper set (printf, memcpy, local and global key-value stores, clocks) with
// the same ids and results everywhere: on the host (reference interpreter and Wasm engine, through
// runtime/helpers.ts defaultHelpers) and on the board (the C interpreter and a Thumb image, through
// runtime/cortex-m/fc/fc_helpers.c), from one real C container compiled by clang.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileThumb, thumbFacts } from '../backends/thumb/aot.js';
import { assembleProgram } from '../compiler/asm.js';
import type { Program } from '../compiler/program.js';
import { loadVerified } from '../runtime/container.js';
import { hasArmGcc, hasQemu } from '../runtime/cortex-m/board.js';
import { DEVICE_HELPER_IDS } from '../runtime/cortex-m/fc/sources.js';
import { deviceFirmware, deviceInterpEngine, deviceRunResult, packBytecode, runDeviceBatch, type DeviceJob } from '../runtime/device-engine.js';
import type { RunResult } from '../runtime/errors.js';
import { conformanceHelpers, defaultHelpers, HELPER_IDS, KV_GLOBAL_CAPACITY, KV_LOCAL_CAPACITY, KvStore } from '../runtime/helpers.js';
import { interpret } from '../runtime/interp.js';
import { thumbEngine } from '../runtime/thumb-engine.js';
import { wasmEngine } from '../runtime/wasm-engine.js';
import { compileBpf, hasClang } from './support/clang.js';

const SOURCE = String.raw`
typedef unsigned long long u64;
typedef unsigned int u32;
static long (*fc_printf)(const char *fmt, u64 a, u64 b, u64 c, u64 d) = (void *)0x01;
static void *(*fc_memcpy)(void *dst, const void *src, u64 len) = (void *)0x02;
static long (*store_local)(u32 key, u32 value) = (void *)0x10;
static long (*store_global)(u32 key, u32 value) = (void *)0x11;
static long (*fetch_local)(u32 key, u32 *value) = (void *)0x12;
static long (*fetch_global)(u32 key, u32 *value) = (void *)0x13;
static u64 (*now_ms)(void) = (void *)0x20;
static u64 (*now_us)(void) = (void *)0x21;

struct ctx { u32 op; u32 arg; unsigned char buf[24]; };

u64 demo(struct ctx *c) {
  u32 v = 0;
  switch (c->op) {
  case 0: { /* printf: every conversion, flags and widths; returns the characters written */
    long n = fc_printf("d=%d u=%u x=%x X=%X\n", (u64)-5, 3000000000u, 0xbeef, 0xbeef);
    n += fc_printf("[%5d][%-5d][%05d][%c]\n", 42, 42, (u64)-42, 'z');
    n += fc_printf("s=%s|%-6s|%6s %% ld=%ld\n", (u64)"str", (u64)"ab", (u64)"cd", (u64)-1);
    n += fc_printf("lx=%llx i=%i lu=%lu\n", 0x123456789abcdefull, (u64)-7, 18446744073709551615ull, 0);
    return n;
  }
  case 1: { /* memcpy into the stack and back, overlapping too; returns a checksum */
    unsigned char tmp[16];
    fc_memcpy(tmp, c->buf, 8);
    fc_memcpy(c->buf + 8, tmp, 8);
    fc_memcpy(c->buf + 1, c->buf, 15);
    u64 s = 0;
    for (int i = 0; i < 24; i++) s = s * 31 + c->buf[i];
    return s;
  }
  case 2: /* memcpy past the end of the context: refused */
    fc_memcpy(c->buf, c->buf + 8, 100);
    return 1;
  case 3: { /* local store up to its capacity, update when full, fetch hit and miss, global */
    u64 r = 0;
    for (u32 k = 1; k <= ${KV_LOCAL_CAPACITY}; k++) r += store_local(k, k * 10) == 0;
    r = r * 10 + (store_local(99, 1) == -1);
    r = r * 10 + (store_local(3, 33) == 0);
    r = r * 100 + (fetch_local(3, &v) == 0 ? v : 0);
    r = r * 10 + (fetch_local(77, &v) == -1);
    r = r * 10 + (store_global(7, 70) == 0);
    r = r * 100 + (fetch_global(7, &v) == 0 ? v : 0);
    return r;
  }
  case 4: /* fetch into memory the program may not write: refused */
    return fetch_local(1, (u32 *)16);
  case 5: { /* clocks never go backwards */
    u64 a = now_us(), m = now_ms();
    u64 s = 0;
    for (u32 i = 0; i < c->arg; i++) s += i * i;
    u64 b = now_us(), n = now_ms();
    return (b >= a && n >= m && s != 12345) ? 1 : 0;
  }
  case 6: /* fill the global store */
    for (u32 k = 0; k < ${KV_GLOBAL_CAPACITY}; k++) if (store_global(1000 + k, k) != 0) return 100 + k;
    return store_global(5000, 1) == -1 ? 2 : 3;
  case 7: /* what another container left in the global store, and in its own local store */
    store_local(c->arg, 5);
    return fetch_global(c->arg, &v) == 0 ? v : 0xdead;
  case 8: /* a bad conversion faults after printing what came before */
    return fc_printf("before %f after", 1, 2, 3, 4);
  case 9: /* %s of an address outside every region */
    return fc_printf("s=%s\n", 8, 0, 0, 0);
  case 10:
    store_global(c->arg, 4321);
    return fetch_local(c->arg, &v) == -1 ? 1 : 0;
  }
  return 0;
}
`;

interface Ctx {
  op: number;
  arg?: number;
}

function ctxBytes({ op, arg = 0 }: Ctx): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, op, true);
  v.setUint32(4, arg, true);
  for (let i = 0; i < 24; i++) b[8 + i] = (i * 7 + 3) & 0xff;
  return b;
}

const EXPECTED_PRINTF =
  'd=-5 u=3000000000 x=beef X=BEEF\n' +
  '[   42][42   ][-0042][z]\n' +
  's=str|ab    |    cd % ld=-1\n' +
  'lx=123456789abcdef i=-7 lu=18446744073709551615\n';

let dir: string;
let program: Program;

beforeAll(async () => {
  expect(hasQemu() && hasArmGcc(), 'qemu-system-arm and arm-none-eabi-gcc are needed').toBe(true);
  expect(hasClang('clang'), 'clang is needed').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'femtojit-helpers-'));
  writeFileSync(join(dir, 'demo.c'), SOURCE);
  const obj = compileBpf(join(dir, 'demo.c'), { clang: 'clang', mcpu: 'v3', out: join(dir, 'demo.o') });
  program = loadVerified(obj, 'demo.o', { entry: 'demo', helpers: defaultHelpers() }).program;
  await deviceFirmware();
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ending(r: RunResult): string {
  return r.ok ? `ok ${r.r0}` : `${r.fault.kind} at ${r.fault.pc}`;
}

interface HostOutcome {
  ending: string;
  output: string;
}

/** Runs one context on a host engine with a fresh registry (fresh local store, given global store). */
async function onHost(engine: 'interp' | 'wasm', c: Ctx, global = new KvStore(KV_GLOBAL_CAPACITY)): Promise<HostOutcome> {
  let output = '';
  const helpers = defaultHelpers({ print: (t) => (output += t), global });
  const mem = ctxBytes(c);
  const r = engine === 'interp' ? interpret(program, { mem, helpers }) : await (await wasmEngine.prepare(program, helpers)).run({ mem });
  return { ending: ending(r), output };
}

const CASES: Ctx[] = [{ op: 0 }, { op: 1 }, { op: 2 }, { op: 3 }, { op: 4 }, { op: 5, arg: 500 }, { op: 6 }, { op: 8 }, { op: 9 }];

describe('the helper set on the host', () => {
  it('printf formats every conversion, flag and width', async () => {
    const r = await onHost('interp', { op: 0 });
    expect(r.output).toBe(EXPECTED_PRINTF);
    expect(r.ending).toBe(`ok ${EXPECTED_PRINTF.length}`);
  });

  it('memcpy copies (overlapping too) and refuses a copy past a region', async () => {
    const c = ctxBytes({ op: 1 });
    const buf = [...c.subarray(8)];
    buf.splice(8, 8, ...buf.slice(0, 8));
    const moved = [buf[0], ...buf.slice(0, 15), ...buf.slice(16)];
    let s = 0n;
    for (const b of moved) s = BigInt.asUintN(64, s * 31n + BigInt(b));
    expect((await onHost('interp', { op: 1 })).ending).toBe(`ok ${s}`);
    expect((await onHost('interp', { op: 2 })).ending).toMatch(/^helper at \d+$/);
  });

  it('the key-value stores keep their capacity, update in place and miss with -1', async () => {
    // 8 stores succeed, the 9th key is refused, an update of a stored key works when full,
    // fetch hits (33) and misses, the global store holds 70.
    expect((await onHost('interp', { op: 3 })).ending).toBe(`ok ${((((((8 * 10 + 1) * 10 + 1) * 100 + 33) * 10 + 1) * 10 + 1) * 100 + 70)}`);
    expect((await onHost('interp', { op: 6 })).ending).toBe('ok 2');
    expect((await onHost('interp', { op: 4 })).ending).toMatch(/^helper at \d+$/);
  });

  it('the global store is shared between registries, the local one is not', async () => {
    const global = new KvStore(KV_GLOBAL_CAPACITY);
    expect((await onHost('interp', { op: 10, arg: 42 }, global)).ending).toBe('ok 1');
    expect((await onHost('interp', { op: 7, arg: 42 }, global)).ending).toBe('ok 4321');
    expect((await onHost('interp', { op: 7, arg: 42 })).ending).toBe(`ok ${0xdead}`);
  });

  it('the clocks are monotonic', async () => {
    expect((await onHost('interp', { op: 5, arg: 2000 })).ending).toBe('ok 1');
  });

  it('a bad conversion faults after printing what came before it', async () => {
    const r = await onHost('interp', { op: 8 });
    expect(r.ending).toMatch(/^helper at \d+$/);
    expect(r.output).toBe('before ');
  });

  it('the Wasm engine gives the same results and output as the interpreter', async () => {
    for (const c of CASES) expect(await onHost('wasm', c), `op ${c.op}`).toEqual(await onHost('interp', c));
  });

  it('defaultHelpers has the device ids; conformanceHelpers is unwind only', () => {
    expect([...defaultHelpers().ids()].sort((a, b) => a - b)).toEqual([...DEVICE_HELPER_IDS].sort((a, b) => a - b));
    expect([...conformanceHelpers().ids()]).toEqual([HELPER_IDS.unwind]);
  });
});

describe('the helper set on the board (C interpreter and Thumb image, same firmware)', () => {
  it('gives every case the host results and output, on both engines', async () => {
    const thumbImage = compileThumb(program, thumbFacts(program, defaultHelpers().ids())).image;
    const bytecode = packBytecode(program);
    const jobs: DeviceJob[] = [];
    for (const c of CASES) {
      jobs.push({ container: bytecode, mem: ctxBytes(c) });
      jobs.push({ container: thumbImage, mem: ctxBytes(c) });
    }
    const runs = await runDeviceBatch(jobs);
    const got = runs.map((run, i) => {
      const c = CASES[i >> 1];
      return { op: c.op, engine: i & 1 ? 'thumb' : 'interp', ending: ending(deviceRunResult(run, program, ctxBytes(c), 100_000_000)), output: run.output };
    });
    const want = await Promise.all(
      CASES.flatMap((c) => ['interp', 'thumb'].map(async (engine) => ({ op: c.op, engine, ...(await onHost('interp', c)) }))),
    );
    expect(got).toEqual(want);
    expect(runs.every((r) => r.canaryOk)).toBe(true);
  }, 120_000);

  it('shares the global store between containers of one firmware run, never the local one', async () => {
    const bytecode = packBytecode(program);
    const thumbImage = compileThumb(program, thumbFacts(program, defaultHelpers().ids())).image;
    const runs = await runDeviceBatch([
      { container: bytecode, mem: ctxBytes({ op: 10, arg: 42 }) },
      { container: thumbImage, mem: ctxBytes({ op: 7, arg: 42 }), keepKv: true },
      { container: bytecode, mem: ctxBytes({ op: 7, arg: 42 }) },
    ]);
    expect(runs.map((r) => r.r0)).toEqual([1n, 4321n, 0xdeadn]);
  }, 120_000);

  it('the board clock is monotonic and advances with the work done', async () => {
    const p = assembleProgram('call 0x21\nmov %r6, %r0\nmov %r1, 0\nloop:\nadd %r1, 1\njlt %r1, 20000, loop\ncall 0x21\nsub %r0, %r6\nexit', 'clock');
    const [run] = await runDeviceBatch([{ container: packBytecode(p) }]);
    // 20000 loop iterations take well over 100,000 board instructions = 25.6 ms of virtual time.
    expect(run.status).toBe(0);
    expect(run.r0).toBeGreaterThan(1000n);
    expect(BigInt(run.insns)).toBeGreaterThan(run.r0 * 3n);
  }, 120_000);

  it('the engines accept the full registry and hand the board output to its printf sink', async () => {
    let printed = '';
    const helpers = defaultHelpers({ print: (t) => (printed += t) });
    const r = await (await deviceInterpEngine.prepare(program, helpers)).run({ mem: ctxBytes({ op: 0 }) });
    expect(ending(r)).toBe(`ok ${EXPECTED_PRINTF.length}`);
    expect(printed).toBe(EXPECTED_PRINTF);
    const t = await (await thumbEngine.prepare(program, helpers)).run({ mem: ctxBytes({ op: 3 }) });
    expect(ending(t)).toBe((await onHost('interp', { op: 3 })).ending);
  }, 120_000);
});
