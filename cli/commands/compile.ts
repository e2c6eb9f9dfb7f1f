import { basename, extname } from 'node:path';
import { intValue, UsageError, value } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../report.js';
import { compileThumbAot } from '../../backends/thumb/aot.js';
import { cHeader } from '../../backends/thumb/emit.js';
import { compileWasmAot } from '../../backends/wasm/aot.js';
import type { Program } from '../../compiler/program.js';
import { loadVerified } from '../../runtime/container.js';
import { defaultHelpers, readInput } from './common.js';

interface Target {
  emits: readonly string[];
  /** The output of `emit` is text (printed to stdout when -o is absent) rather than bytes. */
  text: readonly string[];
  optimizes: boolean;
  /** Can specialise the code for one context length (--mem-size). */
  sized: boolean;
  compile(program: Program, emit: string, optimize: boolean, name: string, memSize: number | undefined): Promise<Uint8Array | string>;
  /** A second file written beside -o OUT (extension replaced), e.g. the C header of `--emit c`. */
  companion?(emit: string, name: string): { ext: string; text: string } | undefined;
}

/** Each target's output forms; the first is the default. */
export const TARGETS: Record<string, Target> = {
  wasm: {
    emits: ['wasm', 'wat'],
    text: ['wat'],
    optimizes: true,
    sized: false,
    compile: (program, emit, optimize) => compileWasmAot(program, { optimize, emit: emit as 'wasm' | 'wat' }),
  },
  thumb: {
    emits: ['image', 'asm', 'c'],
    text: ['asm', 'c'],
    optimizes: false,
    sized: true,
    compile: (program, emit, _optimize, name, memSize) => compileThumbAot(program, { emit: emit as 'image' | 'asm' | 'c', name, memSize }),
    companion: (emit, name) => (emit === 'c' ? { ext: '.h', text: cHeader(name) } : undefined),
  },
};

export const compileCommand: Command = {
  spec: {
    name: 'compile',
    usage: 'femtojit compile PROG --target T [-O] [--emit FORM] [--mem-size N] [--entry NAME] [-o OUT]',
    summary:
      'Compile a verified program ahead of time.\n' +
      '  --target wasm: a sandboxed WebAssembly module (ABI in backends/wasm/ABI.md); --emit wasm|wat\n' +
      '  --target thumb: a Cortex-M container image (backends/thumb/IMAGE.md); --emit image|asm|c',
    options: [
      { name: 'target', value: 'T', help: `target: ${Object.keys(TARGETS).join(', ')}` },
      { name: 'emit', value: 'FORM', help: 'output form (per target; default: the binary form)' },
      { name: 'optimize', short: 'O', help: "run the target's optimizer (wasm: binaryen -O2)" },
      {
        name: 'mem-size', value: 'N',
        help: 'thumb: compile for contexts of exactly N bytes (the verifier proves more accesses; the device runtime refuses any other length)',
      },
      { name: 'entry', value: 'NAME', help: 'ELF only: function symbol or program section' },
      { name: 'output', short: 'o', value: 'OUT', help: 'output file (text forms go to stdout without it)' },
      { name: 'name', value: 'NAME', help: 'C identifier of the image for --emit c (default: from OUT, else fc_image)' },
    ],
    minArgs: 1,
    maxArgs: 1,
    notes: 'exit status: 0 written, 2 refused (load or verification error), 64 usage',
  },
  async run(p, io) {
    const targetName = value(p, 'target');
    if (targetName === undefined) throw new UsageError(`'compile' needs --target (${Object.keys(TARGETS).join(', ')})`);
    const target = TARGETS[targetName];
    if (!target) throw new UsageError(`unknown target '${targetName}' (known: ${Object.keys(TARGETS).join(', ')})`);
    const emit = value(p, 'emit') ?? target.emits[0];
    if (!target.emits.includes(emit)) throw new UsageError(`target ${targetName} emits ${target.emits.join(', ')} (not '${emit}')`);
    const optimize = p.flags.has('optimize');
    if (optimize && !target.optimizes) throw new UsageError(`target ${targetName} has no -O`);
    const out = value(p, 'output');
    if (out === undefined && !target.text.includes(emit)) throw new UsageError(`--emit ${emit} is binary: give -o OUT`);
    const memSize = intValue(p, 'mem-size');
    if (memSize !== undefined && !target.sized) throw new UsageError(`target ${targetName} has no --mem-size`);
    if (memSize !== undefined && !(memSize >= 0 && memSize < 0xffffffff)) throw new UsageError(`--mem-size must be a byte count below 4294967295 (is ${memSize})`);
    const path = p.args[0];
    const { program } = loadVerified(readInput(io, path), path, { entry: value(p, 'entry'), helpers: defaultHelpers() });
    const name = value(p, 'name') ?? (out ? basename(out, extname(out)).replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=\d)/, '_') : 'fc_image');
    const result = await target.compile(program, emit, optimize, name, memSize);
    if (out === undefined) {
      io.out(typeof result === 'string' ? result : '');
      return EXIT.ok;
    }
    io.writeFile(out, result);
    const extra = target.companion?.(emit, name);
    if (extra) io.writeFile(out.slice(0, out.length - extname(out).length) + extra.ext, extra.text);
    return EXIT.ok;
  },
};
