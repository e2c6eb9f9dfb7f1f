// Check merging: an access whose bytes lie inside the bytes of an earlier access through the same,
// unmodified base register needs no check of its own. If the earlier access went through (checked
// or proven), its bytes are in one region — writable, if it wrote — so this one's are too; if it
// faulted, this one never runs. Reads are covered by any earlier access, writes only by earlier
// writes (a passing read says nothing about write permission). The covered access becomes
// 'proven' with `coveredBy` naming the covering access's pc. Exact: no fault moves or disappears.
// Facts flow through a block and on into a successor whose only predecessor it is.
// Keeps hiDead marks.
import type { Access, Inst, IrFunction, IrModule, Reg } from '../ir.js';
import { resetScratch } from '../scratch.js';
import { preds, rpo, writeSpan, type InPlacePass } from './util.js';

interface Passed {
  base: Reg;
  lo: number;
  hi: number;
  write: boolean;
  pc: number;
  region?: string;
}

type MemInst = Extract<Inst, { op: 'load' | 'store' | 'atomic' }>;

function isMem(i: Inst): i is MemInst {
  return i.op === 'load' || i.op === 'store' || i.op === 'atomic';
}

function cover(facts: readonly Passed[], i: MemInst): Passed | undefined {
  const write = i.op !== 'load';
  const lo = i.off;
  const hi = i.off + i.size;
  for (const p of facts) if (p.base === i.base && p.lo <= lo && hi <= p.hi && (p.write || !write)) return p;
  return undefined;
}

function mergeBlock(insts: Inst[], facts: Passed[]): void {
  for (const i of insts) {
    if (isMem(i)) {
      const c = i.access.verdict === 'check' ? cover(facts, i) : undefined;
      if (c !== undefined) {
        const access: Access = { verdict: 'proven', coveredBy: c.pc };
        const region = c.region ?? i.access.region;
        if (region !== undefined) access.region = region;
        i.access = access;
      } else {
        facts.push({ base: i.base, lo: i.off, hi: i.off + i.size, write: i.op !== 'load', pc: i.pc, region: i.access.region });
      }
    }
    // After the access: a def of a base register (a load into its own base included) ends its facts.
    if (facts.length === 0) continue;
    for (let span = writeSpan(i), r = span >> 3, end = r + (span & 7); r < end; r++) {
      for (let k = facts.length - 1; k >= 0; k--) if (facts[k].base === r) facts.splice(k, 1);
    }
  }
}

function checkMergeFunction(f: IrFunction): void {
  resetScratch();
  const ps = preds(f);
  const outFacts: (Passed[] | undefined)[] = new Array<Passed[] | undefined>(f.blocks.length).fill(undefined);
  for (const id of rpo(f)) {
    const only = ps.start[id + 1] - ps.start[id] === 1 && id !== 0 ? outFacts[ps.list[ps.start[id]]] : undefined;
    const facts = only === undefined ? [] : only.slice();
    mergeBlock(f.blocks[id].insts, facts);
    outFacts[id] = facts;
  }
}

export const checkMergeInPlace: InPlacePass = (m: IrModule): void => {
  for (const f of m.functions) checkMergeFunction(f);
};
