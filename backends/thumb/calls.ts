// Calls: helpers through the runtime's dispatcher (a C function, AAPCS), local calls through
// frames in the run state, and the routines every image shares: entry, return, program exit and
// the fault exits. Register convention around C calls: halves homed in r0-r3 (caller-saved under
// AAPCS) are stored to their slots before and reloaded after; r4-r9 survive the call.
import type { Inst } from '../../compiler/ir/ir.js';
import { FRAME, FRAME_SIZE, OFF, slotOf, STATUS } from './abi.js';
import type { Label } from './asm-buffer.js';
import * as E from './encode.js';
import { ldrPc } from './encode-extra.js';
import { cmpImmOr, dpImmOr, ldrState, strState, type Emitter } from './emitter.js';
import { CALLER_SAVED_HOMES } from './regalloc.js';
import { MAX_CALL_DEPTH, STACK_FRAME } from '../../runtime/layout.js';

/** Labels of the routines shared by the whole image. */
export interface SharedLabels {
  entry: Label;
  retCommon: Label;
  exitOk: Label;
  faultCommon: Label;
  faultBudget: Label;
  faultDepth: Label;
  faultHelper: Label;
  faultOob: Label;
  faultPerm: Label;
  memFault: Label;
  lookup: Label;
}

export function sharedLabels(e: Emitter): SharedLabels {
  const l = (n: string): Label => e.buf.label(n);
  return {
    entry: l('entry'),
    retCommon: l('ret_common'),
    exitOk: l('exit_ok'),
    faultCommon: l('fault_common'),
    faultBudget: l('fault_budget'),
    faultDepth: l('fault_depth'),
    faultHelper: l('fault_helper'),
    faultOob: l('fault_oob'),
    faultPerm: l('fault_perm'),
    memFault: l('mem_fault'),
    lookup: l('lookup'),
  };
}

function homedHalves(e: Emitter): Array<{ reg: number; half: 0 | 1; home: number }> {
  return [...e.homes.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([k, home]) => ({ reg: k >> 1, half: (k & 1) as 0 | 1, home }));
}

export function saveCallerSaved(e: Emitter, alsoArgs = false): void {
  for (const h of homedHalves(e)) {
    if (CALLER_SAVED_HOMES.has(h.home) || (alsoArgs && h.reg >= 1 && h.reg <= 5)) strState(e, h.home, slotOf(h.reg, h.half));
  }
}

export function reloadCallerSaved(e: Emitter, alsoR0 = false): void {
  for (const h of homedHalves(e)) {
    if (CALLER_SAVED_HOMES.has(h.home) || (alsoR0 && h.reg === 0)) ldrState(e, h.home, slotOf(h.reg, h.half));
  }
}

/**
 * Writes the known value of every argument half to its slot (after the homes went there): the code
 * may never have stored it (known.ts, liveness.ts).
 */
function storeKnownArgs(e: Emitter): void {
  for (let r = 1; r <= 5; r++) {
    for (const half of [0, 1] as const) {
      const v = e.kv(r, half);
      if (v === undefined) continue;
      e.scope(() => {
        const t = e.take(12);
        e.emit(E.loadConst(t, v));
        strState(e, t, slotOf(r, half));
      });
    }
  }
}

/** `call id` / `callx reg`: r1-r5 go to their slots, the dispatcher returns a status in r0. */
export function lowerHelperCall(e: Emitter, inst: Extract<Inst, { op: 'call' | 'callx' }>, L: SharedLabels): void {
  e.scope(() => {
    const idLo = e.take(11);
    const idHi = e.take(10);
    if (inst.op === 'callx') {
      e.lo(inst.reg, idLo);
      e.hi(inst.reg, idHi);
    }
    saveCallerSaved(e, true);
    storeKnownArgs(e);
    e.emit(E.mov(0, E.SP));
    if (inst.op === 'callx') {
      e.emit(E.mov(1, idLo));
      e.emit(E.mov(2, idHi));
    } else {
      e.emit(E.loadConst(1, inst.id | 0));
      e.emit(E.loadConst(2, 0));
    }
    const fn = e.take(12);
    ldrState(e, fn, OFF.HELPER_FN);
    e.emit(E.blx(fn));
    e.emit(E.cmpImm(0, 0));
    const fail = e.buf.label(`helper_fail_${inst.pc}`);
    e.buf.bcond('ne', fail);
    e.addCold(() => {
      e.buf.bind(fail);
      e.blSite(L.faultHelper, inst.pc);
    });
    reloadCallerSaved(e, true);
  });
}

const frameSlot = (reg: number, half: 0 | 1): number => OFF.FRAMES - FRAME_SIZE + FRAME.SAVED + (reg - 6) * 8 + half * 4;
const FRAME_RET = OFF.FRAMES - FRAME_SIZE + FRAME.RET;

/** Moves r10 and the physical frame pointer by `delta` bytes. */
function moveFrame(e: Emitter, t: number, delta: number): void {
  for (const off of [OFF.R10, OFF.FP_PHYS]) {
    ldrState(e, t, off);
    dpImmOr(e, 'add', false, t, t, delta);
    strState(e, t, off);
  }
}

/**
 * `calllocal`: depth check, r6-r9 saved in the frame at depth (r11 points at the frame array,
 * biased so that [r11, #frameSlot] is the new frame), r10 moved down one frame, `bl` to the callee,
 * whose entry stores lr in the frame. r6-r9 and r10 come back in ret_common.
 */
export function lowerLocalCall(e: Emitter, inst: Extract<Inst, { op: 'calllocal' }>, callee: Label, L: SharedLabels): void {
  e.scope(() => {
    const depth = e.take(12);
    const frame = e.take(11);
    const t = e.take(10);
    ldrState(e, depth, OFF.DEPTH);
    cmpImmOr(e, 'cmp', depth, MAX_CALL_DEPTH - 1);
    const fail = e.buf.label(`depth_fail_${inst.pc}`);
    e.buf.bcond('hs', fail);
    e.addCold(() => {
      e.buf.bind(fail);
      e.blSite(L.faultDepth, inst.pc);
    });
    e.emit(E.addImm(depth, depth, 1));
    strState(e, depth, OFF.DEPTH);
    e.emit(E.add(frame, E.SP, depth, { type: 'lsl', amount: 6 }));
    for (let r = 6; r <= 9; r++) {
      for (const half of [0, 1] as const) {
        const h = e.home(r, half);
        if (h === undefined) ldrState(e, t, slotOf(r, half));
        e.emit(E.loadStore('str', h ?? t, frame, frameSlot(r, half)));
      }
    }
    moveFrame(e, t, -STACK_FRAME);
    e.buf.bl(callee);
  });
}

/** What a function called locally does first: remember where to return. */
export function emitCalleeEntry(e: Emitter): void {
  e.emit(E.loadStore('str', E.LR, 11, FRAME_RET));
}

/** The routines shared by the image: entry, ret_common + exit, fault exits. */
export function emitShared(e: Emitter, L: SharedLabels, entryBody: Label): void {
  // entry: sp = state, lr = return into the trampoline.
  e.buf.bind(L.entry);
  strState(e, E.LR, OFF.EXIT_LR);
  for (const h of homedHalves(e)) ldrState(e, h.home, slotOf(h.reg, h.half));
  const budget = e.alloc.budgetReg;
  if (budget !== undefined) ldrState(e, budget, OFF.BUDGET);
  e.buf.b(entryBody);
  // Every way out of the code passes here first: the budget register goes back to the state.
  const leave = (): void => {
    if (budget !== undefined) strState(e, budget, OFF.BUDGET);
    e.emit(ldrPc(E.SP, OFF.EXIT_LR));
  };

  // ret_common: return from a local call, or end the program at depth 0.
  e.buf.bind(L.retCommon);
  ldrState(e, 12, OFF.DEPTH);
  e.emit(E.cmpImm(12, 0));
  e.buf.bcond('eq', L.exitOk);
  e.emit(E.add(11, E.SP, 12, { type: 'lsl', amount: 6 }));
  e.emit(E.subImm(12, 12, 1));
  strState(e, 12, OFF.DEPTH);
  for (let r = 6; r <= 9; r++) {
    for (const half of [0, 1] as const) {
      const h = e.home(r, half);
      e.emit(E.loadStore('ldr', h ?? 10, 11, frameSlot(r, half)));
      if (h === undefined) strState(e, 10, slotOf(r, half));
    }
  }
  moveFrame(e, 10, STACK_FRAME);
  e.emit(ldrPc(11, FRAME_RET));

  // exit_ok: r0 to its slot, status 0.
  e.buf.bind(L.exitOk);
  for (const h of homedHalves(e)) if (h.reg === 0) strState(e, h.home, slotOf(0, h.half));
  e.emit(E.movsImm(0, STATUS.OK));
  leave();

  // Fault exits: r0 = status, lr = the return address of the reporting `bl` (the site).
  const exitWith = (label: Label, status: number): void => {
    e.buf.bind(label);
    e.emit(E.movsImm(0, status));
    e.buf.b(L.faultCommon);
  };
  exitWith(L.faultBudget, STATUS.budget);
  exitWith(L.faultDepth, STATUS['call-depth']);
  exitWith(L.faultOob, STATUS['out-of-bounds']);
  exitWith(L.faultPerm, STATUS.permission);

  // fault_helper: the dispatcher's status; STOP ends the program with r0 already in its slot.
  e.buf.bind(L.faultHelper);
  const stop = e.buf.label('helper_stop');
  e.emit(E.cmpImm(0, STATUS.STOP));
  e.buf.bcond('eq', stop);
  e.buf.b(L.faultCommon);
  e.buf.bind(stop);
  e.emit(E.movsImm(0, STATUS.OK));
  leave();

  e.buf.bind(L.faultCommon);
  strState(e, E.LR, OFF.FAULT_SITE);
  leave();
}
