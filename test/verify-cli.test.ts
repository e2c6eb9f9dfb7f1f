// `femtojit verify --report [--mem-size N]` as a user runs it: the per-access table, the loop line,
// the summary, and the exit statuses (0 accepted, 2 refused, 64 usage).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, CONFORMANCE_TESTS, ROOT } from './support/paths.js';

interface Ran { status: number; stdout: string; stderr: string }

function femtojit(args: string[]): Ran {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'femtojit-verify-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
function file(name: string, content: string): string {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}

const SUM = ['mov %r0, 0', 'mov %r3, 0', 'jeq %r2, 0, +6', 'mov %r4, %r1', 'add %r4, %r3', 'ldxb %r5, [%r4+0]',
  'add %r0, %r5', 'add %r3, 1', 'jlt %r3, %r2, -6', 'stxdw [%r10-8], %r0', 'ldxdw %r0, [%r10-8]', 'ldxw %r5, [%r1+4]', 'exit'].join('\n');

describe('femtojit verify --report', () => {
  it('prints one line per access with its verdict, region, range and reason, then the loops and a summary', () => {
    const r = femtojit(['verify', file('sum.asm', SUM), '--report']);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/sum\.asm: 4 memory accesses; sizes assumed: none \(mem size unknown\)/);
    expect(r.stdout).toMatch(/^\s+5 {2}ldxb %r5, \[%r4\+0\]\s+proven\s+mem\[0, \d+\]\s+offset \+ 1 <= mem length/m);
    expect(r.stdout).toMatch(/^\s+9 {2}stxdw \[%r10-8\], %r0\s+proven\s+stack-8\s+inside the stack/m);
    expect(r.stdout).toMatch(/^\s+11 {2}ldxw %r5, \[%r1\+4\]\s+check\s+mem\+4\s+the mem size is unknown/m);
    expect(r.stdout).toMatch(/^loops: 1 back edge; bounded \(no budget check\): none; budget-checked: slot 8$/m);
    expect(r.stdout).toMatch(/^accesses: 3 proven, 1 checked, 0 rejected$/m);
    expect(r.stdout).toMatch(/sum\.asm: ok: /);
  });

  it('--mem-size proves what the size allows and bounds the loop', () => {
    const r = femtojit(['verify', file('sum2.asm', SUM), '--report', '--mem-size', '64']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/sizes assumed: mem = 64 bytes/);
    expect(r.stdout).toMatch(/^\s+11 {2}ldxw %r5, \[%r1\+4\]\s+proven\s+mem\+4\s+inside mem \(64 bytes, the given mem size\)/m);
    expect(r.stdout).toMatch(/bounded \(no budget check\): slot 8; budget-checked: none/);
    expect(r.stdout).toMatch(/^accesses: 4 proven, 0 checked, 0 rejected$/m);
  });

  it('refuses an always-faulting access with exit 2 and reports it as rejected', () => {
    const p = file('oob.asm', 'ldxw %r0, [%r1+60]\nexit\n');
    const r = femtojit(['verify', p, '--report', '--mem-size', '16']);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^\s+0 {2}ldxw %r0, \[%r1\+60\]\s+REJECTED\s+mem\+60\s+4-byte access is outside mem on every path/m);
    expect(r.stdout).toMatch(/^accesses: 0 proven, 0 checked, 1 rejected$/m);
    expect(r.stderr).toMatch(/instruction 0 \(ldxw %r0, \[%r1\+60\]\): mem\+60: 4-byte access is outside mem on every path .*\[always-faults\]/);
    expect(r.stderr).toMatch(/refused: 1 problem$/m);
    // Without a size nothing is known to fault: accepted, access checked.
    expect(femtojit(['verify', p]).status).toBe(0);
  });

  it('refuses reads of unwritten stack without --report too', () => {
    const r = femtojit(['verify', file('uninit.asm', 'ldxdw %r0, [%r10-8]\nexit\n')]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/instruction 0 \(ldxdw %r0, \[%r10-8\]\): reads stack bytes at r10\[-8, -1\] that are not written on every path .*\[uninit-stack\]/);
  });

  it('takes the mem size of a conformance test from its -- mem section', () => {
    const r = femtojit(['verify', join(CONFORMANCE_TESTS, 'ldxw.data'), '--report']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/sizes assumed: mem = \d+ bytes/);
    expect(r.stdout).toMatch(/^accesses: 1 proven, 0 checked, 0 rejected$/m);
  });

  it('rejects a bad --mem-size as a usage error', () => {
    const r = femtojit(['verify', file('x.asm', 'mov %r0, 0\nexit\n'), '--mem-size', 'lots']);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/--mem-size/);
  });
});
