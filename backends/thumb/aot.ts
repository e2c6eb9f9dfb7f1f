// The Thumb back end's entry points: program (+ verifier facts) -> IR -> optimised IR -> Thumb code
// -> container image, and the ahead-of-time outputs (`--emit image|asm|c`).
import { calledHelpers, frontEnd, programFacts } from '../../compiler/frontend.js';
import type { IrModule } from '../../compiler/ir/ir.js';
import type { Program } from '../../compiler/program.js';
import { noFacts, type ProgramFacts } from '../../compiler/verify/facts.js';
import { cSource, listing } from './emit.js';
import { writeImage } from './image.js';
import { lowerModule, type LoweredModule } from './lower.js';

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
}

export { calledHelpers };

/** The verifier's facts for the board: any context size, no host regions. */
export function thumbFacts(program: Program, helpers: ReadonlySet<number> = calledHelpers(program)): ProgramFacts {
  return programFacts(program, { helpers });
}

/** Lowers an IR module and packs it into an image. */
export function compileIr(ir: IrModule, facts?: ProgramFacts): Omit<ThumbCompilation, 'ir'> {
  const lowered = lowerModule(ir, facts);
  const image = writeImage({
    code: lowered.code,
    entry: lowered.entry,
    sites: lowered.sites,
    sections: ir.data.map((d, i) => ({ name: d.name, vbase: lowered.regions[1 + i].vbase, bytes: d.bytes, writable: d.writable })),
    helpers: ir.helpers,
    nregs: lowered.alloc.nregs,
    memBase: lowered.regions[lowered.regions.length - 1].vbase,
  });
  return { image, code: lowered.code, map: lowered.marks.map((mk) => ({ pc: mk.pc, offset: mk.offset })), lowered };
}

/** Program -> image. Without facts every access is checked and every loop budgeted. */
export function compileThumb(program: Program, facts?: ProgramFacts): ThumbCompilation {
  const ir = frontEnd(program, facts ?? noFacts());
  return { ...compileIr(ir, facts), ir };
}

export async function compileThumbAot(program: Program, opts: ThumbAotOptions): Promise<Uint8Array | string> {
  const c = compileThumb(program, thumbFacts(program));
  switch (opts.emit) {
    case 'image':
      return c.image;
    case 'asm':
      return await listing(program, c.ir, c.lowered);
    case 'c':
      return cSource(c.image, opts.name ?? 'fc_image', program.origin);
  }
}
