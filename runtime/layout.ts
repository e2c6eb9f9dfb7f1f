// Where a container's regions live in its 32-bit address space: the one layout the interpreter and
// the compiled engines share, so a pointer means the same thing on every engine.
// Order: stack, the program's data sections, host regions, and the context memory last — so that
// every address but the context's end is fixed when the program is compiled, whatever its input.
import type { Program } from '../compiler/program.js';
import { layoutRegions, type Region, type RegionSpec } from './regions.js';

export const STACK_FRAME = 512;
export const MAX_CALL_DEPTH = 8;
export const STACK_SIZE = STACK_FRAME * MAX_CALL_DEPTH;

export interface ContainerLayout {
  regions: Region[];
  stack: Region;
  /** The program's data sections, in Program.data order. */
  data: Region[];
  host: Region[];
  mem?: Region;
}

/**
 * Lays out a run's regions. Data sections are fresh copies (a run never sees another's writes);
 * host regions are used in place; `mem` is copied so the caller's buffer stays untouched.
 */
export function containerLayout(prog: Program, mem?: Uint8Array, host: readonly RegionSpec[] = []): ContainerLayout {
  const specs: RegionSpec[] = [{ name: 'stack', bytes: new Uint8Array(STACK_SIZE), writable: true }];
  for (const s of prog.data) specs.push({ name: s.name, bytes: s.bytes.slice(), writable: s.writable });
  specs.push(...host);
  if (mem) specs.push({ name: 'mem', bytes: mem.slice(), writable: true });
  const regions = layoutRegions(specs);
  const nData = prog.data.length;
  return {
    regions,
    stack: regions[0],
    data: regions.slice(1, 1 + nData),
    host: regions.slice(1 + nData, 1 + nData + host.length),
    mem: mem ? regions[regions.length - 1] : undefined,
  };
}
