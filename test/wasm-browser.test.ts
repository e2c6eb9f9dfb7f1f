// The wasm engine in a real browser: the core (assembler, IR, passes, lowering, encoder, engine) is
// bundled by esbuild for the browser platform, loaded from a file:// page into headless Debian
// chromium through playwright-core, and runs programs there. Results are compared with the
// interpreter in Node. The bundle step fails on any Node-only import in the core.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { rawProgram } from '../compiler/program.js';
import { Interpreter } from '../runtime/interp.js';
import type { BrowserRun } from './support/browser-entry.js';
import { ROOT } from './support/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const NODE_BUILTIN = /^(node:.*|fs|path|os|url|child_process|crypto|buffer|process|util|stream|module|worker_threads|events|assert)(\/.*)?$/;

/** Refuses Node built-ins by name, so the failure says which module imported what. */
function nodeGuard(): Plugin {
  return {
    name: 'no-node-builtins',
    setup(b) {
      b.onResolve({ filter: NODE_BUILTIN }, (args) => ({
        errors: [{ text: `the browser core imports the Node-only module '${args.path}' (from ${args.importer})` }],
      }));
    },
  };
}

async function bundle(entry: string): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [nodeGuard()],
  });
  return out.outputFiles[0].text;
}

const work = mkdtempSync(join(tmpdir(), 'femtojit-browser-'));
let context: BrowserContext | undefined;
let page: Page;

beforeAll(async () => {
  const code = await bundle(join(ROOT, 'test', 'support', 'browser-entry.ts'));
  writeFileSync(join(work, 'core.js'), code);
  writeFileSync(join(work, 'index.html'), '<!doctype html><meta charset="utf-8"><title>femtojit</title><script src="core.js"></script>\n');
  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  await page.goto(pathToFileURL(join(work, 'index.html')).href);
}, 60_000);

afterAll(async () => {
  await context?.close();
  rmSync(work, { recursive: true, force: true });
});

async function inBrowser(text: string, mem?: Uint8Array): Promise<BrowserRun> {
  return page.evaluate(
    ([t, m]) => (globalThis as unknown as { femtojit: { runAsm: (t: string, m: number[] | null) => Promise<BrowserRun> } }).femtojit.runAsm(t, m),
    [text, mem ? [...mem] : null] as const,
  );
}

function inNode(text: string, mem?: Uint8Array): { ok: boolean; r0?: string; kind?: string; pc?: number } {
  const r = new Interpreter(rawProgram(assemble(text), 'node')).run({ mem });
  return r.ok ? { ok: true, r0: r.r0.toString(16) } : { ok: false, kind: r.fault.kind, pc: r.fault.pc };
}

describe('the core bundle', () => {
  it('fails to build when the core imports a Node-only module', async () => {
    const bad = join(work, 'bad-entry.ts');
    writeFileSync(bad, `import { readFileSync } from 'node:fs';\nimport '${join(ROOT, 'runtime', 'wasm-engine.ts')}';\nconsole.log(readFileSync);\n`);
    await expect(bundle(bad)).rejects.toThrow(/Node-only module 'node:fs'/);
  });
});

describe('the wasm engine in headless chromium', () => {
  const sum = 'mov %r0, 0\nmov %r3, 0\nl:\nldxb %r4, [%r1]\nadd %r0, %r4\nadd %r1, 1\nadd %r3, 1\njlt %r3, %r2, l\nexit';
  const programs: [string, string, Uint8Array | undefined][] = [
    ['a loop over mem', sum, Uint8Array.from({ length: 200 }, (_, i) => (i * 7) & 0xff)],
    ['64-bit arithmetic and RFC 9669 division', 'lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nmov %r2, 0\nmod %r0, %r2\nmov %r3, 7\ndiv %r3, %r2\nadd %r0, %r3\nbe64 %r0\nexit', undefined],
    ['a local call with the stack', 'mov %r1, 20\nstxdw [%r10-8], %r1\ncall local f\nldxdw %r2, [%r10-8]\nadd %r0, %r2\nexit\nf:\nmov %r0, %r1\nmul %r0, %r1\nstdw [%r10-8], 1\nexit', undefined],
    ['the unwind helper', 'mov %r1, 0\ncall 5\nmov %r0, 1\nexit', undefined],
  ];

  it.each(programs)('%s: same r0 as the interpreter', async (_name, text, mem) => {
    const got = await inBrowser(text, mem);
    expect(got.moduleBytes).toBeGreaterThan(100);
    expect({ ok: got.ok, r0: got.r0 }).toEqual(inNode(text, mem));
  });

  it('an out-of-bounds access faults with the interpreter\'s kind, pc and message', async () => {
    const text = `${sum.replace('jlt %r3, %r2, l', 'jlt %r3, 300, l')}`;
    const mem = new Uint8Array(64);
    const got = await inBrowser(text, mem);
    const want = inNode(text, mem);
    expect(want.ok).toBe(false);
    expect({ ok: got.ok, kind: got.kind, pc: got.pc }).toEqual(want);
    expect(got.message).toMatch(/^out of bounds at instruction 2 \(ldxb %r4, \[%r1\+0\]\): read of 1 byte at 0x12040 is outside every region/);
  });
});
