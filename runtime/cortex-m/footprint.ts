// Flash and RAM of the device runtime, measured the way a firmware pays for it: minimal programs
// that call the runtime's API are linked with arm-none-eabi-gcc (-ffunction-sections,
// --gc-sections, libgcc for 64-bit division) at -Os and -O2, `arm-none-eabi-size` reads the ELF,
// and an empty program's size is subtracted. The container itself (fc_container_t) and its arena
// are left out of "runtime RAM" (symbols defined at link time) and reported per container.
// Also: the interpreter's own native stack frame (-fstack-usage). Regenerates the table in
// runtime/cortex-m/README.md; the benchmark harness may call measureFootprint() as well.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cortexDir, fcIncludes, fcSources } from './fc/sources.js';

export interface FootprintRow {
  /** What the firmware links. */
  config: string;
  opt: '-Os' | '-O2';
  /** .text + .rodata + .data initialisers, bytes, beyond an empty firmware. */
  flash: number;
  /** .data + .bss of the runtime (the helper registry, the global key-value store), bytes. */
  ram: number;
}

export interface FootprintReport {
  rows: FootprintRow[];
  /** sizeof(fc_container_t): run state, native stack for helpers and interrupts, local store. */
  containerBytes: number;
  /** The container's stack (8 frames of 512 bytes), in the arena. */
  stackBytes: number;
  /** The C interpreter's native stack frame (fc__run_interp), -O2. */
  interpFrameBytes: number;
  gcc: string;
}

const GCC = 'arm-none-eabi-gcc';
const SIZE = 'arm-none-eabi-size';
const CPU = ['-mcpu=cortex-m4', '-mthumb', '-mfloat-abi=soft'];
const run = promisify(execFile);

interface Config {
  name: string;
  interp: boolean;
  helpers: boolean;
  body: string;
}

const CONFIGS: readonly Config[] = [
  { name: 'Thumb images (fc_load + fc_run)', interp: false, helpers: false, body: 'fc_load(&box, img, 64)' },
  { name: 'Thumb images + helper set', interp: false, helpers: true, body: 'fc_register_default_helpers(); fc_load(&box, img, 64)' },
  { name: 'C interpreter (fc_load_bytecode + fc_run)', interp: true, helpers: false, body: 'fc_load_bytecode(&box, img, 64)' },
  { name: 'C interpreter + helper set', interp: true, helpers: true, body: 'fc_register_default_helpers(); fc_load_bytecode(&box, img, 64)' },
  { name: 'both engines + helper set', interp: true, helpers: true, body: 'fc_register_default_helpers(); fc_load(&box, img, 64); fc_load_bytecode(&box, img, 64)' },
];

function mainSource(body: string | undefined): string {
  return [
    '#include "fc.h"',
    '/* Defined at link time: the container and its data are per-container memory, not the runtime. */',
    'extern fc_container_t box;',
    'extern uint8_t arena[];',
    'extern const uint8_t img[];',
    'int main(void) {',
    body === undefined ? '  return 0;' : `  uint64_t r0;\n  fc_init(&box, arena, 8192);\n  ${body};\n  return fc_run(&box, 0, 0, &r0);`,
    '}',
    'void _start(void) { main(); for (;;) {} }',
    '',
  ].join('\n');
}

async function sizeOf(elf: string): Promise<{ text: number; data: number; bss: number }> {
  const { stdout } = await run(SIZE, ['-B', elf]);
  const line = stdout.trim().split('\n')[1].trim().split(/\s+/);
  return { text: Number(line[0]), data: Number(line[1]), bss: Number(line[2]) };
}

// GCC may call memcpy/memset even freestanding; every firmware has them (board/mem.c here), so the
// empty firmware links them too and they do not count as runtime.
const MEM_FUNCTIONS = ['memcpy', 'memmove', 'memset', 'memcmp'];

async function link(dir: string, name: string, sources: string[], opt: string, extra: string[] = []): Promise<string> {
  const elf = path.join(dir, `${name}.elf`);
  const defs = ['box=0x20010000', 'arena=0x20020000', 'img=0x00080000'].map((d) => `-Wl,--defsym=${d}`);
  const mem = [path.join(cortexDir(), 'board', 'mem.c'), ...MEM_FUNCTIONS.map((f) => `-Wl,--undefined=${f}`)];
  await run(GCC, [
    ...CPU, '-std=c99', opt, '-ffreestanding', '-ffunction-sections', '-fdata-sections', '-nostdlib', '-nostartfiles',
    ...fcIncludes().map((i) => `-I${i}`), ...extra, ...sources, ...mem, '-Wl,--gc-sections', '-Wl,-e,_start', ...defs, '-o', elf, '-lgcc',
  ], { cwd: dir });
  return elf;
}

/** Links each configuration at -Os and -O2 and measures it (needs arm-none-eabi-gcc). */
export async function measureFootprint(): Promise<FootprintReport> {
  const dir = await mkdtemp(path.join(tmpdir(), 'femtojit-footprint-'));
  try {
    const rows: FootprintRow[] = [];
    for (const opt of ['-Os', '-O2'] as const) {
      const emptySrc = path.join(dir, 'empty.c');
      await writeFile(emptySrc, mainSource(undefined));
      const base = await sizeOf(await link(dir, `empty${opt}`, [emptySrc], opt));
      for (const [i, c] of CONFIGS.entries()) {
        const src = path.join(dir, `main${i}.c`);
        await writeFile(src, mainSource(c.body));
        const s = await sizeOf(await link(dir, `c${i}${opt}`, [src, ...fcSources({ interp: c.interp, helpers: c.helpers })], opt));
        rows.push({ config: c.name, opt, flash: s.text + s.data - base.text - base.data, ram: s.data + s.bss - base.data - base.bss });
      }
    }
    // sizeof(fc_container_t) from a probe object's symbol table.
    const probe = path.join(dir, 'probe.c');
    await writeFile(probe, '#include "fc.h"\nfc_container_t probe_box;\n');
    await run(GCC, [...CPU, '-std=c99', '-O2', ...fcIncludes().map((i) => `-I${i}`), '-c', probe, '-o', path.join(dir, 'probe.o')]);
    const { stdout: nm } = await run('arm-none-eabi-nm', ['-S', path.join(dir, 'probe.o')]);
    const containerBytes = parseInt(/([0-9a-f]+) [BbCc] probe_box/.exec(nm)?.[1] ?? '0', 16);
    // The interpreter's frame from -fstack-usage.
    const interp = path.join(cortexDir(), 'interp', 'fc_interp.c');
    await run(GCC, [...CPU, '-std=c99', '-O2', '-ffreestanding', '-fstack-usage', ...fcIncludes().map((i) => `-I${i}`), '-c', interp, '-o', path.join(dir, 'fc_interp.o')], { cwd: dir });
    const su = (await readdir(dir)).find((f) => f.endsWith('.su'));
    const usage = su ? await readFile(path.join(dir, su), 'utf8') : '';
    const interpFrameBytes = Number(/fc__run_interp\s+(\d+)/.exec(usage)?.[1] ?? 0);
    const { stdout: version } = await run(GCC, ['--version']);
    return { rows, containerBytes, stackBytes: 4096, interpFrameBytes, gcc: version.split('\n')[0] };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/** The README's table (Markdown). */
export function footprintTable(r: FootprintReport): string {
  const lines = ['| linked | flash -Os | flash -O2 | runtime RAM |', '| --- | ---: | ---: | ---: |'];
  for (const c of CONFIGS) {
    const os = r.rows.find((x) => x.config === c.name && x.opt === '-Os');
    const o2 = r.rows.find((x) => x.config === c.name && x.opt === '-O2');
    if (os && o2) lines.push(`| ${c.name} | ${os.flash} B (${kib(os.flash)}) | ${o2.flash} B (${kib(o2.flash)}) | ${o2.ram} B |`);
  }
  lines.push('| rBPF / femto-container interpreter (published) | ~4.4 KiB | | ~0.6 KiB |');
  return [
    ...lines,
    '',
    `Per container: \`fc_container_t\` ${r.containerBytes} B (run state, ${'FC_NATIVE_STACK'} native stack, local store) + arena: stack ${r.stackBytes} B (8 frames x 512) + writable data sections. The interpreter's own frame: ${r.interpFrameBytes} B of the caller's stack (plus what helpers use). Measured with ${r.gcc}.`,
  ].join('\n');
}
