// The `femtojit` command as users and scripts see it: output format, exit statuses, messages.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, CONFORMANCE_NEGATIVE, CONFORMANCE_TESTS, ROOT } from './support/paths.js';

interface Ran { status: number; stdout: string; stderr: string }

function femtojit(args: string[], input?: string): Ran {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', cwd: ROOT });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'femtojit-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
function file(name: string, content: string | Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}
const lastLine = (s: string): string => s.trimEnd().split('\n').pop() ?? '';
const noStackTrace = (r: Ran): void => expect(r.stderr + r.stdout).not.toMatch(/\n\s+at .*:\d+:\d+/);

describe('help and usage', () => {
  it('lists every command', () => {
    const r = femtojit(['--help']);
    expect(r.status).toBe(0);
    for (const c of ['run', 'conformance', 'verify', 'disasm', 'asm', 'plugin']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });
  it.each(['run', 'conformance', 'verify', 'disasm', 'asm', 'plugin'])('%s --help', (c) => {
    const r = femtojit([c, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: femtojit ${c}`));
  });
  it('rejects an unknown command and option with status 64', () => {
    expect(femtojit(['frobnicate']).status).toBe(64);
    const r = femtojit(['run', '--frob', 'x']);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/unknown option '--frob'/);
    expect(femtojit(['run']).status).toBe(64);
    expect(femtojit(['run', 'x', '--engine', 'nope']).stderr).toMatch(/unknown engine 'nope'/);
  });
});

describe('run', () => {
  it('prints r0 in lowercase hex as the last line', () => {
    const r = femtojit(['run', file('a.asm', 'mov %r0, 42\nexit\n')]);
    expect(r.status).toBe(0);
    expect(lastLine(r.stdout)).toBe('0x2a');
  });
  it('passes memory from --mem-hex and --mem, with r2 its length', () => {
    const prog = file('len.asm', 'ldxb %r0, [%r1+2]\nadd %r0, %r2\nexit\n');
    expect(lastLine(femtojit(['run', prog, '--mem-hex', '01 02 30 04']).stdout)).toBe('0x34');
    expect(lastLine(femtojit(['run', prog, '--mem', file('m.bin', new Uint8Array([9, 9, 0x10]))]).stdout)).toBe('0x13');
  });
  it("uses a .data file's own memory", () => {
    const r = femtojit(['run', join(CONFORMANCE_TESTS, 'subnet.data')]);
    expect(r.status).toBe(0);
    expect(lastLine(r.stdout)).toBe('0x1');
  });
  it('runs raw instruction bytes', () => {
    // mov r0, -1 ; exit
    const raw = new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    expect(lastLine(femtojit(['run', file('p.bin', raw)]).stdout)).toBe('0xffffffffffffffff');
  });
  it('reports an out-of-bounds access as a fault, status 3, naming instruction and address', () => {
    const r = femtojit(['run', file('oob.asm', 'mov %r0, 0\nldxw %r0, [%r1+8]\nexit\n'), '--mem-hex', '01 02 03 04']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/out-of-bounds/);
    expect(r.stderr).toMatch(/instruction 1 \(ldxw %r0, \[%r1\+8\]\)/);
    expect(r.stderr).toMatch(/0x[0-9a-f]+/);
    noStackTrace(r);
  });
  it('stops an endless loop at the budget', () => {
    const r = femtojit(['run', file('loop.asm', 'mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit\n'), '--budget', '1000']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/budget/);
  });
  it('refuses bad input with status 2 and no stack trace', () => {
    for (const bad of [file('bad.asm', 'mov %r0, %r99\nexit\n'), file('odd.bin', new Uint8Array([1, 0, 2])), join(tmp, 'missing.o')]) {
      const r = femtojit(['run', bad]);
      expect(r.status).toBe(2);
      expect(r.stderr).not.toBe('');
      noStackTrace(r);
    }
  });
  it('refuses a program the verifier rejects, naming the instruction', () => {
    const r = femtojit(['run', file('jmp.asm', 'ja +5\nexit\n')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/instruction 0 \(ja \+5\)/);
  });
});

describe('conformance', () => {
  it('passes the whole suite and ends with the count line', () => {
    const r = femtojit(['conformance', CONFORMANCE_TESTS]);
    expect(lastLine(r.stdout)).toBe('313 passed, 0 failed');
    expect(r.status).toBe(0);
  });
  it('reports the malformed negative tests as failures, with status 1', () => {
    const r = femtojit(['conformance', CONFORMANCE_NEGATIVE]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^FAIL empty: .*no program/m);
    expect(r.stdout).toMatch(/^PASS unused-ja-imm$/m);
    expect(lastLine(r.stdout)).toMatch(/^\d+ passed, 10 failed$/);
    noStackTrace(r);
  });
});

describe('verify, disasm, asm, plugin', () => {
  it('verify accepts a good program and lists every problem of a bad one', () => {
    expect(femtojit(['verify', join(CONFORMANCE_TESTS, 'call_local.data')]).status).toBe(0);
    const r = femtojit(['verify', file('two.asm', 'mov %r10, 1\nja +9\nexit\n')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/instruction 0 \(mov %r10, 1\)/);
    expect(r.stderr).toMatch(/instruction 1 \(ja \+9\)/);
  });
  it('asm writes bytes that disasm and run read back', () => {
    const out = join(tmp, 'out.bin');
    expect(femtojit(['asm', file('s.asm', 'mov %r0, 7\nlsh %r0, 2\nexit\n'), '-o', out]).status).toBe(0);
    expect(femtojit(['disasm', out]).stdout).toMatch(/1: lsh %r0, 2/);
    expect(lastLine(femtojit(['run', out]).stdout)).toBe('0x1c');
  });
  it('plugin speaks the bpf_conformance protocol', () => {
    // ldxb r0, [r1+1] ; exit  with memory "05 07"
    const prog = '71 10 01 00 00 00 00 00 95 00 00 00 00 00 00 00';
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'femtojit-plugin.js'), '05  07 ', ''], { input: prog, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('0x7');
    const bad = spawnSync(process.execPath, [join(ROOT, 'dist', 'femtojit-plugin.js'), '', ''], { input: '05 00 00 00 01 00 00 00 95 00 00 00 00 00 00 00', encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/imm/);
  });
});

describe('compile', () => {
  const prog = (): string => file('c.asm', 'mov %r0, 5\nmul %r0, %r0\nexit\n');
  it('writes a Wasm module that validates, and wat text', async () => {
    const out = join(tmp, 'c.wasm');
    expect(femtojit(['compile', prog(), '--target', 'wasm', '-O', '-o', out]).status).toBe(0);
    const { readFileSync } = await import('node:fs');
    expect(WebAssembly.validate(readFileSync(out))).toBe(true);
    const wat = femtojit(['compile', prog(), '--target', 'wasm', '--emit', 'wat']);
    expect(wat.status).toBe(0);
    expect(wat.stdout).toMatch(/^\(module/);
  });
  it('writes a Thumb image, its listing, and a C array with a header', async () => {
    const { readFileSync } = await import('node:fs');
    expect(femtojit(['compile', prog(), '--target', 'thumb', '-o', join(tmp, 'c.img')]).status).toBe(0);
    expect(readFileSync(join(tmp, 'c.img')).length).toBeGreaterThan(16);
    const asm = femtojit(['compile', prog(), '--target', 'thumb', '--emit', 'asm']);
    expect(asm.stdout).toMatch(/mul %r0, %r0/);
    expect(femtojit(['compile', prog(), '--target', 'thumb', '--emit', 'c', '-o', join(tmp, 'my-img.c')]).status).toBe(0);
    expect(readFileSync(join(tmp, 'my-img.c'), 'utf8')).toMatch(/const uint8_t my_img\[\d+\]/);
    expect(readFileSync(join(tmp, 'my-img.h'), 'utf8')).toMatch(/extern const uint8_t my_img\[\];/);
  });
  it('specialises a Thumb image for one context length with --mem-size', async () => {
    const { readFileSync } = await import('node:fs');
    const { readImage } = await import('../backends/thumb/image.js');
    expect(femtojit(['compile', prog(), '--target', 'thumb', '--mem-size', '16', '-o', join(tmp, 'sized.img')]).status).toBe(0);
    expect(readImage(new Uint8Array(readFileSync(join(tmp, 'sized.img')))).memLength).toBe(16);
    expect(readImage(new Uint8Array(readFileSync(join(tmp, 'c.img')))).memLength).toBeUndefined();
    expect(femtojit(['compile', prog(), '--target', 'wasm', '--mem-size', '16', '--emit', 'wat']).stderr).toMatch(/wasm has no --mem-size/);
    expect(femtojit(['compile', prog(), '--target', 'thumb', '--mem-size', 'x', '-o', join(tmp, 'x.img')]).status).toBe(64);
  });
  it('refuses bad targets, forms and binary output to a terminal', () => {
    expect(femtojit(['compile', prog()]).status).toBe(64);
    expect(femtojit(['compile', prog(), '--target', 'x86']).stderr).toMatch(/unknown target 'x86'/);
    expect(femtojit(['compile', prog(), '--target', 'wasm', '--emit', 'asm']).stderr).toMatch(/emits wasm, wat/);
    expect(femtojit(['compile', prog(), '--target', 'thumb']).stderr).toMatch(/binary: give -o/);
    expect(femtojit(['compile', file('bad2.asm', 'ja +7\nexit\n'), '--target', 'wasm', '--emit', 'wat']).status).toBe(2);
  });
});

describe('every engine from the command line', () => {
  it.each(['interp', 'wasm', 'thumb'])('%s runs the suite and reports a fault with exit 3', (engine) => {
    const r = femtojit(['conformance', '--engine', engine, CONFORMANCE_TESTS]);
    expect(lastLine(r.stdout)).toBe('313 passed, 0 failed');
    const oob = femtojit(['run', '--engine', engine, file('oob2.asm', 'ldxw %r0, [%r1+8]\nexit\n'), '--mem-hex', '01 02 03 04']);
    expect(oob.status).toBe(3);
    expect(oob.stderr).toMatch(/out-of-bounds: out of bounds at instruction 0 \(ldxw %r0, \[%r1\+8\]\)/);
  });
});

describe('end to end on clang output', () => {
  it('runs the bundled fletcher32 example and agrees with native gcc', () => {
    const obj = join(tmp, 'fletcher32.o');
    execFileSync('clang', ['-O2', '-target', 'bpf', '-mcpu=v3', '-c', join(ROOT, 'examples/fletcher32.c'), '-o', obj]);
    const native = join(tmp, 'fletcher32-native');
    execFileSync('gcc', ['-O2', '-DFEMTOJIT_NATIVE_MAIN', join(ROOT, 'examples/fletcher32.c'), '-o', native]);
    const input = join(ROOT, 'examples/fletcher32.input');
    const want = execFileSync(native, { input: execFileSync('cat', [input]), encoding: 'utf8' }).trim();
    const r = femtojit(['run', obj, '--mem', input]);
    expect(r.status).toBe(0);
    expect(lastLine(r.stdout)).toBe(want);
    const unknown = femtojit(['run', obj, '--entry', 'nope']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no program section or global function named 'nope'; available entries: .*fletcher32 \(function\)/);
  });
});
