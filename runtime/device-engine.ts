// The C interpreter on the board: eBPF programs packed into bytecode containers ("FCB1") and run by
// the device runtime's interpreter (runtime/cortex-m/interp/fc_interp.c) on the emulated Cortex-M4
// (QEMU mps2-an386), with the same region table, helpers and fault codes as the Thumb images.
//
// The firmware is runtime/cortex-m/firmware/run-image.c built with the interpreter: it picks the
// loader by magic, so the same firmware runs Thumb images and bytecode containers, and
// `runDeviceBatch` returns for each run the board's exact instruction count (`insns`, the
// interpreter's loop only, as runThumbBatch counts the generated code only) and what the program
// printed. Runs are batched as the Thumb engine batches them (QEMU boots in tens of milliseconds).
//
// Bytecode container = the Thumb image format (backends/thumb/IMAGE.md) with magic "FCB1": code =
// the eBPF slots with every data relocation resolved (the layout fixes section addresses) plus one
// all-zero end slot, entry = byte offset of the entry slot, no fault sites, 11 registers.
import { cHeader, cSource, type CArrayKind } from '../backends/thumb/emit.js';
import { Batcher } from './batcher.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32, H, writeImage } from '../backends/thumb/image.js';
import { encode } from '../compiler/decode.js';
import { disasmInsn } from '../compiler/disasm.js';
import { LDDW } from '../compiler/opcodes.js';
import type { Program } from '../compiler/program.js';
import { buildFirmware } from './cortex-m/build.js';
import { runOnBoard } from './cortex-m/board.js';
import { cortexDir, DEVICE_HELPER_IDS, fcIncludes, fcSources } from './cortex-m/fc/sources.js';
import type { Engine, EngineRunOptions, Runnable } from './engine.js';
import type { RunResult } from './errors.js';
import { HELPER_IDS, outputOf, type HelperRegistry } from './helpers.js';
import { DEFAULT_BUDGET } from './interp.js';
import { containerLayout } from './layout.js';
import { LOAD_STATUS, parseLine, ThumbBoardError, toRunResult, type ThumbRun } from './thumb-engine.js';

export interface DeviceJob {
  /** A bytecode container (packBytecode) or a Thumb image (compileThumb): the magic decides. */
  container: Uint8Array;
  mem?: Uint8Array;
  /** Budget (default as the interpreter's); Infinity = no limit. */
  budget?: number;
  /** Keep the global key-value store of the previous run (default: every run starts with it empty). */
  keepKv?: boolean;
}

/** One run as the firmware reports it (ThumbRun's fields) plus what the program printed. */
export interface DeviceRun extends ThumbRun {
  /** printf output, one character per byte. */
  output: string;
  /** The output went past the firmware's capture buffer and was cut. */
  outputTruncated: boolean;
  /** FC_ERR_INSN refusals: the slot the device refused. */
  refusedSlot?: number;
}

export interface DeviceFirmwareOptions {
  /** The interpreter's compact dispatch (FC_INTERP_COMPACT, what -Os builds get): smaller, slower. */
  compact?: boolean;
}

/** One benchmark run on the board: the checksum, eBPF instructions executed and board instructions. */
export interface DeviceMeasurement {
  checksum: bigint;
  steps: number;
  /** Instructions the board executed in the interpreter's loop (exact, QEMU -icount). */
  insns: number;
}

/** A program the bytecode container format cannot carry; the message names what and where. */
export class BytecodeError extends Error {
  override name = 'BytecodeError';
}

/** The device refused a container (never ran it). */
export class DeviceRefusedError extends ThumbBoardError {
  override name = 'DeviceRefusedError';
}

export const BYTECODE_MAGIC = 0x31424346; // "FCB1"
/** fc_status_t FC_ERR_INSN: an instruction the device interpreter refuses at load. */
export const FC_ERR_INSN = 27;
const BATCH_LIMIT = 400;
const EBPF_REGS = 11;

/** Packs a loaded program into a bytecode container for fc_load_bytecode. */
export function packBytecode(program: Program): Uint8Array {
  const insns = program.insns.map((i) => ({ ...i }));
  const layout = containerLayout(program, new Uint8Array(0));
  for (const r of program.relocs) {
    const first = insns[r.slot];
    if (first === undefined || first.code !== LDDW || r.slot + 1 >= insns.length) {
      throw new BytecodeError(`${program.origin}: relocation at slot ${r.slot} is not at an lddw`);
    }
    const section = layout.data[r.section];
    if (section === undefined) throw new BytecodeError(`${program.origin}: relocation at slot ${r.slot} names data section ${r.section}, which does not exist`);
    const v = BigInt(section.base + r.addend);
    first.imm = Number(BigInt.asIntN(32, v));
    first.src = 0;
    insns[r.slot + 1].imm = Number(BigInt.asIntN(32, v >> 32n));
  }
  const body = encode(insns);
  const code = new Uint8Array(body.length + 8); // + the all-zero end slot
  code.set(body);
  const helpers = [...new Set(insns.filter((i) => i.code === 0x85 && i.src === 0).map((i) => i.imm >>> 0))].sort((a, b) => a - b);
  const image = writeImage({
    code,
    entry: program.entry * 8,
    sites: [],
    sections: program.data.map((d, i) => ({ name: d.name, vbase: layout.data[i].base, bytes: d.bytes, writable: d.writable })),
    helpers,
    nregs: EBPF_REGS,
    memBase: layout.mem?.base ?? 0,
  });
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  view.setUint32(H.MAGIC, BYTECODE_MAGIC, true);
  view.setUint32(H.CRC, 0, true);
  view.setUint32(H.CRC, crc32(image), true);
  return image;
}

const BYTECODE: CArrayKind = {
  what: 'an eBPF bytecode container (runtime/cortex-m/interp/README.md)',
  loader: 'fc_load_bytecode',
  inPlace: 'read in place',
};

/** A C file defining a container as an aligned const array, for firmware that embeds it (fc_load_bytecode). */
export function bytecodeCSource(container: Uint8Array, name: string, origin: string): string {
  return cSource(container, name, origin, BYTECODE);
}

/** The header declaring an array written by bytecodeCSource. */
export function bytecodeCHeader(name: string): string {
  return cHeader(name, BYTECODE);
}

const firmwares = new Map<boolean, Promise<string>>();

/** Builds (once per process; content-cached) run-image.c with the interpreter. */
export function deviceFirmware(opts: DeviceFirmwareOptions = {}): Promise<string> {
  const compact = opts.compact ?? false;
  const cortex = cortexDir();
  let elf = firmwares.get(compact);
  if (elf === undefined) {
    elf = buildFirmware({
      name: compact ? 'run-image-interp-compact' : 'run-image-interp',
      sources: [path.join(cortex, 'firmware', 'run-image.c'), ...fcSources({ interp: true })],
      includes: fcIncludes(),
      defines: { FC_TRACE: '1', FC_WITH_INTERP: '1', ...(compact ? { FC_INTERP_COMPACT: '1' } : {}) },
      outDir: path.resolve(cortex, '..', '..', 'build', 'firmware'),
    });
    firmwares.set(compact, elf);
  }
  return elf;
}

const O_LINE = /^O (\d+) ([0-9a-f]*|truncated)$/;
const X_LINE = /^X (\d+) slot=(\d+)$/;

function hexText(hex: string): string {
  let s = '';
  for (let i = 0; i + 1 < hex.length; i += 2) s += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return s;
}

/** Parses the firmware's report (R, O and X lines) into one DeviceRun per job. */
export function parseDeviceReport(stdout: string, count: number): Array<DeviceRun | undefined> {
  const runs = new Array<DeviceRun | undefined>(count);
  const output = new Map<number, string>();
  const truncated = new Set<number>();
  const slots = new Map<number, number>();
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    const o = O_LINE.exec(line);
    if (o) {
      const i = Number(o[1]);
      if (o[2] === 'truncated') truncated.add(i);
      else output.set(i, (output.get(i) ?? '') + hexText(o[2]));
      continue;
    }
    const x = X_LINE.exec(line);
    if (x) {
      slots.set(Number(x[1]), Number(x[2]));
      continue;
    }
    const r = parseLine(line);
    if (r && r.index < count) {
      const i = r.index;
      const run: DeviceRun = { ...r.run, output: output.get(i) ?? '', outputTruncated: truncated.has(i) };
      const slot = slots.get(i);
      if (slot !== undefined) run.refusedSlot = slot;
      runs[i] = run;
    }
  }
  return runs;
}

const budgetArg = (b: number | undefined): string => {
  const v = b ?? DEFAULT_BUDGET;
  if (!(v >= 0)) throw new RangeError(`budget must be a non-negative number of instructions (is ${v})`);
  return v === Infinity ? 'inf' : String(Math.floor(v));
};

async function runChunk(jobs: readonly DeviceJob[], timeoutMs: number, fw: DeviceFirmwareOptions): Promise<DeviceRun[]> {
  const elf = await deviceFirmware(fw);
  const dir = await mkdtemp(path.join(tmpdir(), 'femtojit-device-'));
  try {
    await Promise.all(
      jobs.map(async (j, i) => {
        await writeFile(path.join(dir, `${i}.bin`), j.container);
        if (j.mem !== undefined) await writeFile(path.join(dir, `${i}.mem`), j.mem);
      }),
    );
    const lines = jobs.map((j, i) => `${i}.bin ${j.mem !== undefined ? `${i}.mem` : '-'} ${budgetArg(j.budget)}${j.keepKv ? ' keepkv' : ''}`);
    await writeFile(path.join(dir, 'manifest'), lines.join('\n') + '\n');
    const r = await runOnBoard(elf, { args: ['batch', 'manifest'], cwd: dir, timeoutMs, maxOutputBytes: 64 * 1024 * 1024 });
    const runs = parseDeviceReport(r.stdout, jobs.length);
    const missing = runs.findIndex((x) => x === undefined);
    if (missing >= 0 || (r.exitCode !== 0 && r.exitCode !== 0xe0)) {
      const why = r.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${r.exitCode}`;
      throw new ThumbBoardError(
        `the board run of ${jobs.length} containers failed (${why}${missing >= 0 ? `, no result for run ${missing}` : ''}):\n${r.stdout.slice(-2000)}${r.stderr.slice(-1000)}`,
      );
    }
    return runs as DeviceRun[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs containers on the board in as few firmware invocations as possible, in order. */
export async function runDeviceBatch(jobs: readonly DeviceJob[], opts: { timeoutMs?: number } & DeviceFirmwareOptions = {}): Promise<DeviceRun[]> {
  const out: DeviceRun[] = [];
  for (let i = 0; i < jobs.length; i += BATCH_LIMIT) {
    const chunk = jobs.slice(i, i + BATCH_LIMIT);
    out.push(...(await runChunk(chunk, opts.timeoutMs ?? 30_000 + 200 * chunk.length, opts)));
  }
  return out;
}

/** Turns a device run of `program` into the RunResult every engine returns. */
export function deviceRunResult(run: DeviceRun, program: Program, mem: Uint8Array | undefined, budget: number): RunResult {
  if (run.refused) {
    const slot = run.refusedSlot;
    const where = slot !== undefined && slot < program.insns.length ? ` at instruction ${slot} (${disasmInsn(program.insns, slot)})` : '';
    const why = run.status === FC_ERR_INSN ? 'an instruction it does not accept' : (LOAD_STATUS[run.status] ?? `status ${run.status}`);
    throw new DeviceRefusedError(`the device runtime refused the container${where}: ${why}`);
  }
  return toRunResult(run, program, mem, budget);
}

const batcher = new Batcher<DeviceJob, DeviceRun>((jobs) => runDeviceBatch(jobs));

class DeviceRunnable implements Runnable {
  constructor(
    private readonly program: Program,
    readonly container: Uint8Array,
    private readonly print: ((text: string) => void) | undefined,
  ) {}

  async run(opts: EngineRunOptions = {}): Promise<RunResult> {
    if (opts.regions !== undefined && opts.regions.length > 0) {
      throw new ThumbBoardError(`the device engine maps no host regions (asked for ${opts.regions.map((r) => r.name).join(', ')})`);
    }
    const budget = opts.budget ?? DEFAULT_BUDGET;
    const run = await batcher.submit({ container: this.container, mem: opts.mem, budget });
    // The board ran its own printf: its text goes where the host registry's printf would print.
    if (run.output.length > 0) this.print?.(run.output);
    return deviceRunResult(run, this.program, opts.mem, budget);
  }
}

/** Packs for the board's C interpreter; the registry may only name helpers the device provides. */
export function prepareDevice(program: Program, helpers: HelperRegistry): DeviceRunnable {
  const extra = [...helpers.ids()].filter((id) => !DEVICE_HELPER_IDS.has(id));
  if (extra.length > 0) {
    throw new ThumbBoardError(`the board firmware provides helpers ${[...DEVICE_HELPER_IDS].join(', ')} only; not ${extra.join(', ')}`);
  }
  return new DeviceRunnable(program, packBytecode(program), outputOf(helpers.get(HELPER_IDS.printf)));
}

/** The C interpreter on the emulated Cortex-M4, as an engine (for ENGINES, the CLI and the conformance runner). */
export const deviceInterpEngine: Engine = {
  name: 'fc-interp',
  description: 'the device runtime\'s C interpreter on the emulated Cortex-M4 (QEMU mps2-an386)',
  prepare: prepareDevice,
};

/**
 * Runs `program` on `input` with the board's C interpreter (for bench/device-engines.ts): the
 * figure to compare with runThumbBatch's `insns` for the same program and input.
 */
export async function measureDeviceInterp(program: Program, input: Uint8Array, budget = 1_000_000_000): Promise<DeviceMeasurement> {
  const [run] = await runDeviceBatch([{ container: packBytecode(program), mem: input, budget }]);
  const r = deviceRunResult(run, program, input, budget);
  if (!r.ok) throw new ThumbBoardError(`the C interpreter faulted: ${r.fault.message}`);
  return { checksum: BigInt.asUintN(64, r.r0), steps: run.steps, insns: run.insns };
}
