// The host eBPF engines of the benchmarks: the Wasm JIT adapter (compile stages timed apart) and the
// binaryen-optimised AOT module run through the JIT's host glue give gcc's answer, including on a
// program with .rodata and one that writes its context; the engine list takes every host engine
// of ENGINES and leaves the board's engines to the device phase. No timing is asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEVICE_ENGINE_NAMES } from '../bench/device-engines.js';
import { hostEbpfEngines, WASM_AOT, WASM_JIT } from '../bench/host-engines.js';
import { PROGRAMS } from '../bench/programs.js';
import { buildNative, compileBpf, runNative } from '../bench/toolchain.js';
import { loadVerified } from '../runtime/container.js';
import { ENGINES } from '../runtime/engine.js';
import { conformanceHelpers } from '../runtime/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'femtojit-bench-engines-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('host engine list', () => {
  it('takes every host engine of ENGINES, the Wasm JIT followed by its AOT output, and no board engine', () => {
    const names = hostEbpfEngines().map((e) => e.name);
    const expected = [...ENGINES.keys()].filter((n) => !DEVICE_ENGINE_NAMES.has(n)).flatMap((n) => (n === 'wasm' ? ['wasm', 'wasm-aot'] : [n]));
    expect(names).toEqual(expected);
    expect(names).toContain('interp');
    expect(names).not.toContain('thumb');
    expect(hostEbpfEngines().every((e) => e.where === 'host')).toBe(true);
  });
});

describe.each(['crc32_table', 'bubble_sort', 'packet_parser'])('%s on the Wasm engines', (name) => {
  const p = PROGRAMS.find((q) => q.name === name)!;

  it('gives the native answer, with femtojit\'s compile, V8\'s instantiate and the module size apart', async () => {
    const input = p.input();
    writeFileSync(join(work, `${name}.input`), input);
    const native = (await runNative((await buildNative(p, work)).value, join(work, `${name}.input`))).checksum;
    const { program } = loadVerified((await compileBpf(p, 'v3', work)).value, `${name}.v3.o`, { entry: name, helpers: conformanceHelpers() });
    expect(await WASM_AOT.unavailable()).toBeUndefined();
    for (const engine of [WASM_JIT, WASM_AOT]) {
      const m = await engine.measure(program, conformanceHelpers(), input);
      expect({ engine: engine.name, checksum: m.checksum }).toEqual({ engine: engine.name, checksum: native });
      expect(m.jitMs).toBeGreaterThan(0);
      expect(m.instantiateMs).toBeGreaterThanOrEqual(0);
      expect(m.prepareMs).toBeCloseTo((m.jitMs ?? 0) + (m.instantiateMs ?? 0), 6);
      expect(m.codeBytes).toBeGreaterThan(8);
      expect(m.timing).toBeUndefined();
    }
  }, 120_000);
});
