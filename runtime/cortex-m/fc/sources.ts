// The device runtime's C sources, for every firmware build that links it (the Thumb engine's and
// the C interpreter's test firmware, the examples, the footprint measurement), so the list of
// files lives in one place.
import path from 'node:path';
import { boardDir } from '../config.js';

/**
 * fc_image.c and fc_run.c are always linked; the Thumb runner in them is kept only when the
 * firmware calls fc_load (fc_run reaches engines through the pointer the loader sets, and builds
 * use --gc-sections).
 */
export interface FcSourceOptions {
  /** The C interpreter (fc_load_bytecode). Default false. */
  interp?: boolean;
  /** The standard helper set (fc_register_default_helpers). Default true. */
  helpers?: boolean;
}

/** Helper ids of fc_register_default_helpers (fc.h FC_HELPER_*; runtime/helpers.ts HELPER_IDS). */
export const DEVICE_HELPER_IDS: ReadonlySet<number> = new Set([0x01, 0x02, 0x05, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21]);

/** runtime/cortex-m, wherever this module runs from (the tree or a bundle in dist/). */
export function cortexDir(): string {
  return path.dirname(boardDir());
}

/** Include directories a firmware using fc.h needs. */
export function fcIncludes(): string[] {
  return [path.join(cortexDir(), 'fc')];
}

/** The runtime's C files for a firmware with the given parts. fc_run.c is always needed. */
export function fcSources(opts: FcSourceOptions = {}): string[] {
  const fc = path.join(cortexDir(), 'fc');
  const out = [path.join(fc, 'fc_image.c'), path.join(fc, 'fc_run.c')];
  if (opts.helpers ?? true) out.push(path.join(fc, 'fc_helpers.c'));
  if (opts.interp ?? false) out.push(path.join(cortexDir(), 'interp', 'fc_interp.c'));
  return out;
}
