// The browser test's entry (bundled by test/wasm-browser.test.ts with esbuild, platform browser):
// assembles a program, compiles it with the wasm engine and runs it, all inside the page. Only the
// core is imported here, so a Node-only import anywhere in it breaks the bundle and the test.
import { assemble } from '../../compiler/asm.js';
import { rawProgram } from '../../compiler/program.js';
import { conformanceHelpers } from '../../runtime/helpers.js';
import { wasmEngine } from '../../runtime/wasm-engine.js';

export interface BrowserRun {
  ok: boolean;
  /** r0 as a hex string (bigints do not cross page.evaluate). */
  r0?: string;
  kind?: string;
  pc?: number;
  message?: string;
  /** The module's size in bytes, to show it was compiled here. */
  moduleBytes: number;
}

async function runAsm(text: string, mem: number[] | null): Promise<BrowserRun> {
  const program = rawProgram(assemble(text), 'browser');
  const runnable = await wasmEngine.prepare(program, conformanceHelpers());
  const r = await runnable.run({ mem: mem === null ? undefined : Uint8Array.from(mem) });
  const moduleBytes = 'compiled' in runnable ? (runnable as { compiled: { bytes: Uint8Array } }).compiled.bytes.length : 0;
  if (r.ok) return { ok: true, r0: r.r0.toString(16), moduleBytes };
  return { ok: false, kind: r.fault.kind, pc: r.fault.pc, message: r.fault.message, moduleBytes };
}

(globalThis as { femtojit?: { runAsm: typeof runAsm } }).femtojit = { runAsm };
