// The Thumb back end's entry points: program (+ verifier facts) -> IR -> optimised IR -> Thumb code
// -> container image, and the ahead-of-time outputs (`--emit image|asm|c`).
import { calledHelpers, frontEnd, programFacts } from '../../compiler/frontend.js';
import type { IrModule } from '../../compiler/ir/ir.js';
import type { Program } from '../../compiler/program.js';
import { noFacts, type ProgramFacts } from '../../compiler/verify/facts.js';
import { cSource, listing } from './emit.js';
import { ANY_MEM_LENGTH, writeImage } from './image.js';
import { lowerModule, type LoweredModule, type LowerOptions } from './lower.js';

export interface ThumbCompilation {
  image: Uint8Array;
  code: Uint8Array;
  /** Code offset where each IR instruction's code starts, with its eBPF pc, in code order. */
  map: Array<{ pc: number; offset: number }>;
  ir: IrModule;
  lowered: LoweredModule;
}

export interface ThumbAotOptions {
  emit: 'image' | 'asm' | 'c';
  /** C identifier of the image array for `emit: 'c'` (default `fc_image`). */
  name?: string;
  /**
   * Specialise for contexts of exactly this many bytes: the verifier proves more accesses and loops
   * with the length known, and the image records it, so the device refuses a run with any other
   * length (IMAGE.md). Default: any length.
   */
  memSize?: number;
}

export interface ThumbFactsOptions {
  /** The context length the facts may assume (default: any length). */
  memSize?: number;
}

export { calledHelpers };

/**
 * The verifier's facts for the board: no host regions; any context size, or exactly `memSize` bytes
 * (then `assumedSizes.mem` says so, and an image compiled with them runs only on that length).
 */
export function thumbFacts(program: Program, helpers: ReadonlySet<number> = calledHelpers(program), opts: ThumbFactsOptions = {}): ProgramFacts {
  const { memSize } = opts;
  if (memSize === undefined) return programFacts(program, { helpers });
  if (!Number.isInteger(memSize) || memSize < 0 || memSize >= ANY_MEM_LENGTH) {
    throw new RangeError(`context size ${memSize} is not a byte count from 0 to ${ANY_MEM_LENGTH - 1}`);
  }
  // The analysis takes the context's size from a region named 'mem'.
  return programFacts(program, { helpers, hostRegions: [{ name: 'mem', size: memSize, writable: true }] });
}

/**
 * The context length an image compiled with these facts must be run with: the size the facts
 * assumed (undefined = any). Taken from the facts themselves so that no caller can pair facts for
 * one length with an image that accepts another.
 */
export function requiredMemLength(facts: ProgramFacts | undefined): number | undefined {
  return facts?.assumedSizes.mem;
}

/**
 * Lowers an IR module and packs it into an image for the context length the facts assumed. `facts`
 * must be those the IR was built with: the IR's proven accesses carry no record of the length
 * they assumed, so IR from facts for one length lowered without them would accept any length.
 */
export function compileIr(ir: IrModule, facts?: ProgramFacts, opts?: LowerOptions): Omit<ThumbCompilation, 'ir'> {
  const lowered = lowerModule(ir, facts, opts);
  const image = writeImage({
    code: lowered.code,
    entry: lowered.entry,
    sites: lowered.sites,
    sections: ir.data.map((d, i) => ({ name: d.name, vbase: lowered.regions[1 + i].vbase, bytes: d.bytes, writable: d.writable })),
    helpers: ir.helpers,
    nregs: lowered.alloc.nregs,
    memBase: lowered.regions[lowered.regions.length - 1].vbase,
    memLength: requiredMemLength(facts),
  });
  return { image, code: lowered.code, map: lowered.marks.map((mk) => ({ pc: mk.pc, offset: mk.offset })), lowered };
}

/**
 * Program -> image. Without facts every access is checked and every loop budgeted; facts for one
 * context size (thumbFacts with `memSize`) give an image that runs only with that size.
 */
export function compileThumb(program: Program, facts?: ProgramFacts): ThumbCompilation {
  const ir = frontEnd(program, facts ?? noFacts());
  return { ...compileIr(ir, facts), ir };
}

export async function compileThumbAot(program: Program, opts: ThumbAotOptions): Promise<Uint8Array | string> {
  const c = compileThumb(program, thumbFacts(program, calledHelpers(program), { memSize: opts.memSize }));
  switch (opts.emit) {
    case 'image':
      return c.image;
    case 'asm':
      return await listing(program, c.ir, c.lowered);
    case 'c':
      return cSource(c.image, opts.name ?? 'fc_image', program.origin);
  }
}
