// Where the repo and the shared conformance suite are, wherever vitest is started from.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CONFORMANCE = join(ROOT, '..', 'shared', 'conformance', 'bpf_conformance');
export const CONFORMANCE_TESTS = join(CONFORMANCE, 'tests');
export const CONFORMANCE_NEGATIVE = join(CONFORMANCE, 'negative');
export const CLI = join(ROOT, 'dist', 'femtojit.js');

export function dataFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.data')).sort().map((f) => join(dir, f));
}
