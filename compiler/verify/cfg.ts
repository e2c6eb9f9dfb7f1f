// Control-flow graph of an eBPF program: functions, basic blocks, successors and predecessors.
// Built for any decoded program, valid or not, so the structural verifier can use it to report
// problems; the abstract interpreter reuses it on programs the structural verifier accepted.
//
// Functions are the contiguous slot ranges that start at slot 0, at the entry and at every local-call
// target (as the kernel's subprogram split does: calls in unreachable code split too). A function
// ends where the next one starts. Blocks never cross a function boundary.
import type { Program } from '../program.js';
import { classify, isInvalid, LDDW, type Classified, type Insn } from '../opcodes.js';

export interface Block {
  id: number;
  /** Index into `Cfg.functions` of the function holding the block. */
  fn: number;
  /** First slot of the block. */
  start: number;
  /**
   * Slot just past the block's last instruction (an lddw counts both of its slots, so a truncated
   * lddw in the last slot gives `insns.length + 1`).
   */
  end: number;
  /** Slot of the block's last instruction. */
  last: number;
  /** Successor block ids, without duplicates; the fall-through successor (if any) comes first. */
  succs: number[];
  /** Predecessor block ids, ascending, without duplicates. */
  preds: number[];
  /**
   * The last instruction can continue with the next slot, but that slot is past the end of the
   * block's function (into the next function, or past the end of the program).
   */
  fallsOff: boolean;
  /** Reachable from the entry through jumps, fall-through and local calls. */
  reachable: boolean;
}

/** A local call whose target is a valid instruction start. */
export interface CallSite {
  /** Slot of the `call local` instruction. */
  slot: number;
  /** Target slot (start of the callee). */
  target: number;
  /** Index into `Cfg.functions` of the callee. */
  callee: number;
}

export interface CfgFunction {
  id: number;
  /** Slots [start, end). */
  start: number;
  end: number;
  /** Block id of the function's first block. */
  entry: number;
  /** Block ids of the function, in slot order. */
  blocks: number[];
  /** Local calls made from this function, in slot order (reachable or not). */
  calls: CallSite[];
  /** The program entry, or called from reachable code. */
  reachable: boolean;
}

export interface Cfg {
  insns: readonly Insn[];
  /** Blocks in slot order; `blocks[i].id === i`. */
  blocks: Block[];
  /** Functions in slot order; `functions[i].id === i`. */
  functions: CfgFunction[];
  /** Index into `functions` of the entry function, or -1 when the entry slot is not an instruction start. */
  entry: number;
  /** Block id holding each slot (an lddw's second slot maps to the lddw's block). */
  blockOfSlot: Int32Array;
  /** Function index holding each slot. */
  fnOfSlot: Int32Array;
  /** Classification per slot (classifyAll), for users that would otherwise classify again. */
  cls: (Classified | undefined)[];
}

/** Slots taken by the instruction at i: 2 for lddw (whatever its other fields), else 1. */
export function insnLength(insns: readonly Insn[], i: number): 1 | 2 {
  return insns[i].code === LDDW ? 2 : 1;
}

/** Per slot: true where an instruction starts (false for the second slot of an lddw). */
export function instructionStarts(insns: readonly Insn[]): Uint8Array {
  const starts = new Uint8Array(insns.length);
  for (let i = 0; i < insns.length; i += insnLength(insns, i)) starts[i] = 1;
  return starts;
}

/** Slot a jump (ja, ja32, conditional) goes to when taken; undefined for other forms. */
export function jumpTarget(insn: Insn, i: number, c: Classified): number | undefined {
  if (c.form === 'ja') return i + 1 + (c.wide ? insn.off : insn.imm);
  if (c.form === 'jcond') return i + 1 + insn.off;
  return undefined;
}

/** Slot a local call goes to; undefined for anything else. */
export function callTarget(insn: Insn, i: number, c: Classified): number | undefined {
  return c.form === 'call' && c.local ? i + 1 + insn.imm : undefined;
}

/** Whether control can continue with the next instruction (not ja, ja32 or exit). */
export function fallsThrough(c: Classified | undefined): boolean {
  return c === undefined || (c.form !== 'ja' && c.form !== 'exit');
}

/** Classification per slot; undefined for invalid slots and lddw second slots. */
export function classifyAll(insns: readonly Insn[], starts: Uint8Array): (Classified | undefined)[] {
  return insns.map((insn, i) => {
    if (!starts[i]) return undefined;
    const c = classify(insn);
    return isInvalid(c) ? undefined : c;
  });
}

export function buildCfg(prog: Program): Cfg {
  const { insns } = prog;
  const n = insns.length;
  const starts = instructionStarts(insns);
  const cls = classifyAll(insns, starts);
  const valid = (t: number | undefined): t is number => t !== undefined && t >= 0 && t < n && starts[t] === 1;

  const fnStarts = new Set<number>();
  if (n > 0) fnStarts.add(0);
  const entryOk = valid(prog.entry);
  if (entryOk) fnStarts.add(prog.entry);
  const leaders = new Set<number>(fnStarts);
  for (let i = 0; i < n; i++) {
    const c = cls[i];
    if (c === undefined) continue;
    const call = callTarget(insns[i], i, c);
    if (valid(call)) { fnStarts.add(call); leaders.add(call); }
    const jump = jumpTarget(insns[i], i, c);
    if (jump !== undefined || c.form === 'exit') {
      if (valid(jump)) leaders.add(jump);
      const next = i + insnLength(insns, i);
      if (next < n) leaders.add(next);
    }
  }

  const fnStartList = [...fnStarts].sort((a, b) => a - b);
  const functions: CfgFunction[] = fnStartList.map((start, id) => ({
    id, start, end: fnStartList[id + 1] ?? n, entry: -1, blocks: [], calls: [], reachable: false,
  }));
  const fnOfSlot = new Int32Array(n);
  for (const f of functions) fnOfSlot.fill(f.id, f.start, f.end);

  const blocks: Block[] = [];
  const blockOfSlot = new Int32Array(n).fill(-1);
  for (let i = 0; i < n;) {
    const fn = fnOfSlot[i];
    const start = i;
    let last = i;
    do {
      last = i;
      i += insnLength(insns, i);
    } while (i < n && !leaders.has(i));
    const id = blocks.length;
    blockOfSlot.fill(id, start, Math.min(i, n));
    blocks.push({ id, fn, start, end: i, last, succs: [], preds: [], fallsOff: false, reachable: false });
    functions[fn].blocks.push(id);
    if (functions[fn].entry < 0) functions[fn].entry = id;
  }

  for (const b of blocks) {
    const c = cls[b.last];
    const fnEnd = functions[b.fn].end;
    if (fallsThrough(c)) {
      if (b.end < fnEnd) b.succs.push(blockOfSlot[b.end]);
      else b.fallsOff = true;
    }
    const jump = c === undefined ? undefined : jumpTarget(insns[b.last], b.last, c);
    if (valid(jump)) {
      const t = blockOfSlot[jump];
      if (!b.succs.includes(t)) b.succs.push(t);
    }
    for (const s of b.succs) blocks[s].preds.push(b.id);
  }
  for (const b of blocks) b.preds.sort((x, y) => x - y);

  for (let i = 0; i < n; i++) {
    const c = cls[i];
    const target = c === undefined ? undefined : callTarget(insns[i], i, c);
    if (valid(target)) functions[fnOfSlot[i]].calls.push({ slot: i, target, callee: fnOfSlot[target] });
  }

  const entry = entryOk ? fnOfSlot[prog.entry] : -1;
  markReachable(blocks, functions, blockOfSlot, entry);
  return { insns, blocks, functions, entry, blockOfSlot, fnOfSlot, cls };
}

function markReachable(blocks: Block[], functions: CfgFunction[], blockOfSlot: Int32Array, entry: number): void {
  if (entry < 0) return;
  const callsByBlock = new Map<number, CallSite[]>();
  for (const f of functions) {
    for (const call of f.calls) {
      const b = blockOfSlot[call.slot];
      const list = callsByBlock.get(b);
      if (list === undefined) callsByBlock.set(b, [call]);
      else list.push(call);
    }
  }
  const work: number[] = [];
  const visit = (id: number): void => {
    if (blocks[id].reachable) return;
    blocks[id].reachable = true;
    work.push(id);
  };
  const enterFunction = (fn: number): void => {
    const f = functions[fn];
    if (f.reachable) return;
    f.reachable = true;
    visit(f.entry);
  };
  enterFunction(entry);
  for (let id = work.pop(); id !== undefined; id = work.pop()) {
    for (const s of blocks[id].succs) visit(s);
    for (const call of callsByBlock.get(id) ?? []) enterFunction(call.callee);
  }
}
