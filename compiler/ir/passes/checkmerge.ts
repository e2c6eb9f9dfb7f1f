// Check merging: an access whose bytes lie inside the bytes of an earlier access through the same,
// unmodified base register needs no check of its own. If the earlier access went through (checked
// or proven), its bytes are in one region — writable, if it wrote — so this one's are too; if it
// faulted, this one never runs. Reads are covered by any earlier access, writes only by earlier
// writes (a passing read says nothing about write permission). The covered access becomes
// 'proven' with `coveredBy` naming the covering access's pc. Exact: no fault moves or disappears.
// Facts flow through a block and on into a successor whose only predecessor it is.
// Pure (returns a new module); keeps hiDead marks.
import type { Access, Inst, IrFunction, IrModule, Reg } from '../ir.js';
import { mapFunctions, preds, rpo, writes } from './util.js';

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
  return facts.find((p) => p.base === i.base && p.lo <= i.off && i.off + i.size <= p.hi && (p.write || !write));
}

function mergeBlock(insts: Inst[], facts: Passed[]): Inst[] {
  return insts.map((i) => {
    let out = i;
    if (isMem(i)) {
      const c = i.access.verdict === 'check' ? cover(facts, i) : undefined;
      if (c !== undefined) {
        const access: Access = { verdict: 'proven', coveredBy: c.pc };
        const region = c.region ?? i.access.region;
        if (region !== undefined) access.region = region;
        out = { ...i, access };
      } else {
        facts.push({ base: i.base, lo: i.off, hi: i.off + i.size, write: i.op !== 'load', pc: i.pc, region: i.access.region });
      }
    }
    // After the access: a def of a base register (a load into its own base included) ends its facts.
    for (const r of writes(out)) {
      for (let k = facts.length - 1; k >= 0; k--) if (facts[k].base === r) facts.splice(k, 1);
    }
    return out;
  });
}

function checkMergeFunction(f: IrFunction): void {
  const ps = preds(f);
  const outFacts = new Map<number, Passed[]>();
  for (const id of rpo(f)) {
    const only = ps[id].length === 1 && id !== 0 ? outFacts.get(ps[id][0]) : undefined;
    const facts = only === undefined ? [] : [...only];
    const b = f.blocks[id];
    b.insts = mergeBlock(b.insts, facts);
    outFacts.set(id, facts);
  }
}

export function checkMerge(m: IrModule): IrModule {
  return mapFunctions(m, checkMergeFunction);
}
