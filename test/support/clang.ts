// Compiles C test programs with the real BPF toolchain at test time (Debian clang 14 and
// clang-19, installed by scripts/setup.sh) and reads llvm-objdump-19's view of the result, so
// tests compare the loader against an independent tool rather than against numbers copied by hand.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

export type ClangName = 'clang' | 'clang-19';

export interface CompileOptions {
  clang: ClangName;
  mcpu: 'v3' | 'v4';
  /** Where to write the object; a fresh temporary directory otherwise. */
  out?: string;
  /** More flags, e.g. ['-g'] for BTF and DWARF sections. */
  extraArgs?: string[];
}

/** One section as llvm-objdump-19 -d disassembles it. */
export interface ObjdumpSection {
  /** Instruction slots (an lddw counts two). */
  slots: number;
  /** Labelled symbols (functions and local labels) -> slot index within the section. */
  symbols: Map<string, number>;
}

export const OBJDUMP = 'llvm-objdump-19';

/** True when `name` runs. Tests call this to fail with a clear message, never to skip. */
export function hasClang(name: ClangName | typeof OBJDUMP): boolean {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

let scratch: string | undefined;

function scratchDir(): string {
  if (scratch === undefined) {
    scratch = mkdtempSync(join(tmpdir(), 'femtojit-clang-'));
  }
  return scratch;
}

/** Compiles the C file `src` (absolute, or relative to the working directory) to a BPF object. */
export function compileBpf(src: string, opts: CompileOptions): Uint8Array {
  const input = resolve(src);
  const out = opts.out ?? join(scratchDir(), `${basename(input, '.c')}.${opts.clang}.${opts.mcpu}.o`);
  const args = ['-O2', '-target', 'bpf', `-mcpu=${opts.mcpu}`, ...(opts.extraArgs ?? []), '-c', input, '-o', out];
  try {
    execFileSync(opts.clang, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`${opts.clang} ${args.join(' ')} failed:\n${stderr || String(e)}`);
  }
  return new Uint8Array(readFileSync(out));
}

/** Removes the scratch directory; call from `afterAll` (worker exit hooks do not run reliably). */
export function removeScratch(): void {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** A path in the scratch directory, e.g. for an object llvm-objdump should read. */
export function scratchPath(name: string): string {
  return join(scratchDir(), name);
}

const SECTION_RE = /^Disassembly of section (.+):$/;
const LABEL_RE = /^[0-9a-f]+ <(.+)>:$/;
const INSN_RE = /^\s*(\d+):\s+((?:[0-9a-f]{2}[ \t])+)/;

/** Parses `llvm-objdump-19 -d` of an object into per-section slot counts and symbol slots. */
export function objdumpSections(objPath: string): Map<string, ObjdumpSection> {
  const text = execFileSync(OBJDUMP, ['-d', objPath], { encoding: 'utf8' });
  const out = new Map<string, ObjdumpSection>();
  let current: ObjdumpSection | undefined;
  let pendingLabels: string[] = [];
  for (const line of text.split('\n')) {
    const sec = SECTION_RE.exec(line);
    if (sec) {
      current = { slots: 0, symbols: new Map() };
      out.set(sec[1], current);
      pendingLabels = [];
      continue;
    }
    const label = LABEL_RE.exec(line);
    if (label) {
      pendingLabels.push(label[1]);
      continue;
    }
    const insn = INSN_RE.exec(line);
    if (insn && current) {
      const index = Number(insn[1]);
      for (const l of pendingLabels) current.symbols.set(l, index);
      pendingLabels = [];
      const bytes = insn[2].trim().split(/\s+/).length;
      current.slots = index + bytes / 8;
    }
  }
  return out;
}
