import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm.js';
import { classify, isInvalid, type Insn } from '../compiler/opcodes.js';
import { rawProgram, type Program } from '../compiler/program.js';
import { buildCfg, instructionStarts, insnLength, jumpTarget, type Cfg } from '../compiler/verify/cfg.js';

const prog = (text: string, entry = 0): Program => ({ ...rawProgram(assemble(text), 'cfg-test'), entry });

/** Blocks as [start, end, succ starts, pred starts] so expectations read in slots, not ids. */
function shape(cfg: Cfg): [number, number, number[], number[]][] {
  const at = (id: number): number => cfg.blocks[id].start;
  return cfg.blocks.map((b) => [b.start, b.end, b.succs.map(at), b.preds.map(at)]);
}

describe('instruction starts', () => {
  it('skips the second slot of every lddw', () => {
    const insns = assemble('lddw %r0, 0x100000002\nmov %r1, 1\nlddw %r2, 3\nexit');
    expect([...instructionStarts(insns)]).toEqual([1, 0, 1, 1, 0, 1]);
    expect(insnLength(insns, 0)).toBe(2);
    expect(insnLength(insns, 2)).toBe(1);
  });

  it('computes jump targets from off (ja, conditional) and from imm (ja32)', () => {
    const insns = assemble('ja +3\nja32 +5\njeq %r1, 0, -2\nexit');
    const targets = insns.map((insn, i) => {
      const c = classify(insn);
      return isInvalid(c) ? undefined : jumpTarget(insn, i, c);
    });
    expect(targets).toEqual([4, 7, 1, undefined]);
  });
});

describe('basic blocks and successors', () => {
  it('keeps straight-line code in one block', () => {
    const cfg = buildCfg(prog('mov %r0, 1\nadd %r0, 2\ncall 5\nexit'));
    expect(shape(cfg)).toEqual([[0, 4, [], []]]);
    expect(cfg.blocks[0].last).toBe(3);
    expect(cfg.blocks[0].reachable).toBe(true);
  });

  it('splits an if/else diamond, fall-through successor first', () => {
    const cfg = buildCfg(prog(`
      jeq %r1, 0, +2
      mov %r0, 1
      ja +1
      mov %r0, 2
      exit`));
    expect(shape(cfg)).toEqual([
      [0, 1, [1, 3], []],
      [1, 3, [4], [0]],
      [3, 4, [4], [0]],
      [4, 5, [], [1, 3]],
    ]);
  });

  it('gives a loop a back edge to its header', () => {
    const cfg = buildCfg(prog(`
      mov %r0, 0
      add %r0, 1
      jlt %r0, 10, -2
      exit`));
    expect(shape(cfg)).toEqual([
      [0, 1, [1], []],
      [1, 3, [3, 1], [0, 1]],
      [3, 4, [], [1]],
    ]);
  });

  it('merges the two edges of a conditional jump to the next instruction', () => {
    const cfg = buildCfg(prog('jeq %r1, 0, +0\nmov %r0, 0\nexit'));
    expect(shape(cfg)).toEqual([[0, 1, [1], []], [1, 3, [], [0]]]);
  });

  it('maps both slots of an lddw to its block', () => {
    const cfg = buildCfg(prog('ja +2\nlddw %r0, 5\nmov %r0, 1\nexit'));
    expect(shape(cfg)).toEqual([[0, 1, [3], []], [1, 3, [3], []], [3, 5, [], [0, 1]]]);
    expect([...cfg.blockOfSlot]).toEqual([0, 1, 1, 2, 2]);
    expect(cfg.blocks[1].reachable).toBe(false);
  });

  it('drops edges to targets outside the program or inside an lddw', () => {
    const cfg = buildCfg(prog('jeq %r1, 0, +100\nja -3\nlddw %r0, 1\nexit'));
    const b0 = cfg.blocks[0];
    expect(b0.succs.map((s) => cfg.blocks[s].start)).toEqual([1]);
    // ja -3 from slot 1 lands on slot -1: no edge at all.
    expect(cfg.blocks[cfg.blockOfSlot[1]].succs).toEqual([]);
  });

  it('marks code after a ja or exit unreachable', () => {
    const cfg = buildCfg(prog('mov %r0, 0\nexit\nmov %r0, 1\nexit'));
    expect(cfg.blocks.map((b) => [b.start, b.reachable])).toEqual([[0, true], [2, false]]);
  });
});

describe('functions', () => {
  const callProgram = `
    mov %r1, 1
    call local f
    exit
    f:
    mov %r0, %r1
    exit`;

  it('starts a function at the entry and at each local-call target', () => {
    const cfg = buildCfg(prog(callProgram));
    expect(cfg.functions.map((f) => [f.start, f.end])).toEqual([[0, 3], [3, 5]]);
    expect(cfg.entry).toBe(0);
    expect(cfg.functions[0].calls).toEqual([{ slot: 1, target: 3, callee: 1 }]);
    expect(cfg.functions[1].calls).toEqual([]);
    expect([...cfg.fnOfSlot]).toEqual([0, 0, 0, 1, 1]);
    expect(cfg.functions.map((f) => f.reachable)).toEqual([true, true]);
    // The call does not end a block; exit does, and the callee starts its own.
    expect(shape(cfg)).toEqual([[0, 3, [], []], [3, 5, [], []]]);
    expect(cfg.functions.map((f) => cfg.blocks[f.entry].start)).toEqual([0, 3]);
  });

  it('flags a block that falls through into the next function', () => {
    const cfg = buildCfg(prog(`
      call local f
      call local g
      exit
      f:
      mov %r0, 1
      g:
      mov %r0, 2
      exit`));
    expect(cfg.functions.map((f) => [f.start, f.end])).toEqual([[0, 3], [3, 4], [4, 6]]);
    const f = cfg.blocks[cfg.functions[1].entry];
    expect(f.fallsOff).toBe(true);
    expect(f.succs).toEqual([]);
    expect(cfg.blocks.filter((b) => b.fallsOff).map((b) => b.start)).toEqual([3]);
  });

  it('flags a block that runs past the end of the program', () => {
    const cfg = buildCfg(prog('mov %r0, 1\njeq %r0, 1, -1'));
    expect(cfg.blocks.map((b) => [b.start, b.fallsOff])).toEqual([[0, false], [1, true]]);
  });

  it('keeps jumps across functions as edges (the verifier rejects them)', () => {
    const cfg = buildCfg(prog(`
      call local f
      ja +2
      exit
      f:
      mov %r0, 1
      exit`));
    const jump = cfg.blocks[cfg.blockOfSlot[1]];
    expect(jump.succs.map((s) => cfg.blocks[s].start)).toEqual([4]);
    expect(cfg.fnOfSlot[4]).toBe(1);
  });

  it('starts at a non-zero entry: code before it is a separate, unreachable function', () => {
    const cfg = buildCfg(prog('mov %r0, 7\nexit\nmov %r0, 1\nexit', 2));
    expect(cfg.functions.map((f) => [f.start, f.end, f.reachable])).toEqual([[0, 2, false], [2, 4, true]]);
    expect(cfg.entry).toBe(1);
    expect(cfg.blocks.map((b) => b.reachable)).toEqual([false, true]);
  });

  it('does not reach a function called only from unreachable code', () => {
    const cfg = buildCfg(prog(`
      mov %r0, 0
      exit
      call local f
      exit
      f:
      exit`));
    expect(cfg.functions.map((f) => [f.start, f.reachable])).toEqual([[0, true], [4, false]]);
  });

  it('has no entry when the entry slot is not an instruction start', () => {
    const cfg = buildCfg(prog('lddw %r0, 1\nexit', 1));
    expect(cfg.entry).toBe(-1);
    expect(cfg.blocks.some((b) => b.reachable)).toBe(false);
  });

  it('handles the empty program and a truncated lddw', () => {
    expect(buildCfg(rawProgram([], 'empty'))).toMatchObject({ blocks: [], functions: [], entry: -1 });
    const truncated: Insn[] = [{ code: 0x18, dst: 0, src: 0, off: 0, imm: 1 }];
    const cfg = buildCfg(rawProgram(truncated, 'lddw'));
    expect(cfg.blocks).toHaveLength(1);
    expect(cfg.blocks[0]).toMatchObject({ start: 0, end: 2, fallsOff: true, reachable: true });
  });
});
