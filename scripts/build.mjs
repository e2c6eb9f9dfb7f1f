// Bundles the command-line entry points into dist/ with esbuild (ESM, Node 20).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entries = {
  femtojit: 'cli/femtojit.ts',
  'femtojit-plugin': 'cli/femtojit-plugin.ts',
};
if (existsSync(`${root}/bench/harness.ts`)) entries.bench = 'bench/harness.ts';

await build({
  absWorkingDir: root,
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  // Heavy optional tools stay outside the bundle and are imported lazily where used.
  external: ['binaryen', 'wabt', 'capstone-wasm'],
  logLevel: 'warning',
});
