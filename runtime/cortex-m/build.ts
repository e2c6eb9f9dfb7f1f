// Builds freestanding firmware for the emulated board with arm-none-eabi-gcc. The board support
// sources (startup, semihosting, counter, memory functions) and the linker script are always
// added. Output ELFs are cached by a content hash of everything the compiler reads, so repeated
// test runs link nothing new.

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BoardError, ICOUNT_SHIFT, boardDir } from './config.js';

export interface FirmwareOptions {
  /** File name stem of the ELF: letters, digits, `.`, `_`, `-`. */
  name: string;
  /** C or assembly sources of the firmware itself (board sources are added automatically). */
  sources: string[];
  /** Extra include directories (the board directory is always included). */
  includes?: string[];
  /** Preprocessor definitions, `-DKEY=VALUE`. */
  defines?: Record<string, string>;
  /** Extra flags, after the defaults (so `-O0` here overrides the default `-O2`). */
  cflags?: string[];
  /** Where ELFs and their cache keys live; created if missing. */
  outDir: string;
}

export class FirmwareBuildError extends BoardError {
  override name = 'FirmwareBuildError';
}

const GCC = 'arm-none-eabi-gcc';

const BOARD_SOURCES = ['startup.c', 'semihost.c', 'counter.c', 'mem.c'];
const LINKER_SCRIPT = 'mps2-an386.ld';

const CPU_FLAGS = ['-mcpu=cortex-m4', '-mthumb', '-mfloat-abi=soft'];
const DEFAULT_CFLAGS = [
  '-std=c99',
  '-O2',
  '-g',
  '-Wall',
  '-Wextra',
  '-ffreestanding',
  '-ffunction-sections',
  '-fdata-sections',
];
const LINK_FLAGS = ['-nostdlib', '-Wl,--gc-sections'];

const run = promisify(execFile);

let gccAvailable: boolean | undefined;

/** True when arm-none-eabi-gcc can be run (scripts/setup.sh installs it). */
export function hasArmGcc(): boolean {
  gccAvailable ??= spawnSync(GCC, ['--version'], { stdio: 'ignore' }).status === 0;
  return gccAvailable;
}

let gccVersion: Promise<string> | undefined;

function compilerVersion(): Promise<string> {
  gccVersion ??= run(GCC, ['--version']).then(
    (r) => r.stdout,
    (e: unknown) => {
      throw new FirmwareBuildError(`${GCC} cannot be run (${errorText(e)}); scripts/setup.sh installs it`);
    },
  );
  return gccVersion;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface GccFailure {
  code?: number | string;
  stderr?: string;
}

function gccFailure(e: unknown): GccFailure {
  return typeof e === 'object' && e !== null ? (e as GccFailure) : {};
}

function validate(opts: FirmwareOptions): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.name)) {
    throw new FirmwareBuildError(
      `firmware name "${opts.name}" is not usable as a file name (letters, digits, '.', '_', '-')`,
    );
  }
  if (opts.sources.length === 0) throw new FirmwareBuildError(`firmware "${opts.name}": no sources given`);
  for (const src of opts.sources) {
    if (!existsSync(src)) throw new FirmwareBuildError(`firmware "${opts.name}": source not found: ${src}`);
  }
  for (const key of Object.keys(opts.defines ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new FirmwareBuildError(`firmware "${opts.name}": define "${key}" is not a C identifier`);
    }
  }
}

/** Every file gcc reads for these sources (sources and headers), from its dependency output. */
async function dependencies(compileArgs: string[], sources: string[], name: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run(GCC, [...compileArgs, '-M', ...sources], { maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    const f = gccFailure(e);
    throw new FirmwareBuildError(
      `${GCC} could not preprocess firmware "${name}" (exit ${String(f.code)}):\n${f.stderr ?? errorText(e)}`,
    );
  }
  // Make-rule syntax: "target: dep dep \\\n dep"; escaped spaces in paths are kept together.
  const files = new Set<string>();
  for (const rule of out.replace(/\\\n/g, ' ').split('\n')) {
    const colon = rule.indexOf(': ');
    if (colon < 0) continue;
    for (const dep of rule.slice(colon + 2).split(/(?<!\\) +/)) {
      if (dep !== '') files.add(dep.replace(/\\ /g, ' '));
    }
  }
  return [...files].sort();
}

/**
 * Compiles and links a firmware ELF for mps2-an386 and returns its path. Rebuilds only when a
 * source, header, flag, the linker script or the compiler changes.
 */
export async function buildFirmware(opts: FirmwareOptions): Promise<string> {
  validate(opts);
  const board = boardDir();
  const sources = [...opts.sources.map((s) => path.resolve(s)), ...BOARD_SOURCES.map((s) => path.join(board, s))];
  const includes = [board, ...(opts.includes ?? []).map((i) => path.resolve(i))];
  const defines = Object.entries({ BOARD_ICOUNT_SHIFT: String(ICOUNT_SHIFT), ...opts.defines });
  const compileArgs = [
    ...CPU_FLAGS,
    ...DEFAULT_CFLAGS,
    ...includes.map((i) => `-I${i}`),
    ...defines.map(([k, v]) => `-D${k}=${v}`),
    ...(opts.cflags ?? []),
  ];
  const linkerScript = path.join(board, LINKER_SCRIPT);
  const linkArgs = [`-T${linkerScript}`, ...LINK_FLAGS];

  const hash = createHash('sha256');
  hash.update(await compilerVersion());
  hash.update(JSON.stringify([compileArgs, linkArgs, sources]));
  for (const file of [...(await dependencies(compileArgs, sources, opts.name)), linkerScript]) {
    hash.update(file);
    hash.update(await readFile(file));
  }
  const key = hash.digest('hex').slice(0, 16);

  const outDir = path.resolve(opts.outDir);
  const elf = path.join(outDir, `${opts.name}-${key}.elf`);
  if (existsSync(elf)) return elf;

  await mkdir(outDir, { recursive: true });
  // Concurrent builds of the same firmware each write their own file; the rename is atomic.
  const tmp = `${elf}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await run(GCC, [...compileArgs, ...sources, ...linkArgs, '-lgcc', '-o', tmp], { maxBuffer: 16 << 20 });
  } catch (e) {
    await rm(tmp, { force: true });
    const f = gccFailure(e);
    throw new FirmwareBuildError(
      `${GCC} failed building firmware "${opts.name}" (exit ${String(f.code)}):\n${(f.stderr ?? errorText(e)).trimEnd()}`,
    );
  }
  await rename(tmp, elf);
  return elf;
}
