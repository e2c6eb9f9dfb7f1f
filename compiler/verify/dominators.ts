// Dominators and natural loops of one function's control-flow graph (Cooper, Harvey and Kennedy's
// iterative algorithm over reverse postorder). The abstract interpreter widens at every target of a
// retreating edge (so it terminates on irreducible graphs too) and looks for termination proofs on
// natural loops only.
import type { Cfg } from './cfg.js';

export interface FunctionGraph {
  /** Reachable blocks of the function in reverse postorder from its entry. */
  rpo: number[];
  /** Position of a block in `rpo` (-1: not reachable from the function entry). */
  order: Map<number, number>;
  /** Immediate dominator of each reachable block (the entry is its own). */
  idom: Map<number, number>;
  /** Targets of retreating edges: where the analysis widens. */
  wideningPoints: Set<number>;
  /** Natural loops by header, with the back edges (latch blocks) that close them. */
  loops: NaturalLoop[];
  /**
   * For each widening point, the blocks of its strongly connected component (the largest cycle
   * set it lies on: an outer loop with its inner ones, or an irreducible region).
   */
  cycleOf: Map<number, readonly number[]>;
}

export interface NaturalLoop {
  header: number;
  /** Blocks whose edge to the header is a back edge (the header dominates them). */
  latches: number[];
  /** Every block of the loop, header included. */
  body: Set<number>;
}

export function functionGraph(cfg: Cfg, fn: number): FunctionGraph {
  const entry = cfg.functions[fn].entry;
  const blocks = cfg.blocks;
  const post: number[] = [];
  const seen = new Set<number>([entry]);
  const stack: { b: number; i: number }[] = [{ b: entry, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const succs = blocks[top.b].succs;
    if (top.i < succs.length) {
      const s = succs[top.i++];
      if (!seen.has(s)) { seen.add(s); stack.push({ b: s, i: 0 }); }
    } else {
      post.push(top.b);
      stack.pop();
    }
  }
  const rpo = post.reverse();
  const order = new Map<number, number>();
  rpo.forEach((b, i) => order.set(b, i));

  const idom = new Map<number, number>([[entry, entry]]);
  const intersect = (a: number, b: number): number => {
    let x = a, y = b;
    while (x !== y) {
      while ((order.get(x) ?? 0) > (order.get(y) ?? 0)) x = idom.get(x) ?? entry;
      while ((order.get(y) ?? 0) > (order.get(x) ?? 0)) y = idom.get(y) ?? entry;
    }
    return x;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const b of rpo) {
      if (b === entry) continue;
      let d: number | undefined;
      for (const p of blocks[b].preds) {
        if (!idom.has(p) || !order.has(p)) continue;
        d = d === undefined ? p : intersect(p, d);
      }
      if (d !== undefined && idom.get(b) !== d) { idom.set(b, d); changed = true; }
    }
  }

  const dominates = (a: number, b: number): boolean => {
    for (let x = b; ; x = idom.get(x) ?? entry) {
      if (x === a) return true;
      if (x === entry) return a === entry;
    }
  };
  const wideningPoints = new Set<number>();
  const latchesOf = new Map<number, number[]>();
  for (const b of rpo) {
    for (const s of blocks[b].succs) {
      if (!order.has(s)) continue;
      // A dominator of b comes before it in reverse postorder: only retreating edges can be back edges.
      if ((order.get(s) ?? 0) > (order.get(b) ?? 0)) continue;
      wideningPoints.add(s);
      if (dominates(s, b)) {
        const l = latchesOf.get(s);
        if (l === undefined) latchesOf.set(s, [b]);
        else l.push(b);
      }
    }
  }
  const loops: NaturalLoop[] = [];
  for (const [header, latches] of latchesOf) {
    const body = new Set<number>([header]);
    const work = latches.filter((l) => l !== header);
    for (const l of work) body.add(l);
    for (let b = work.pop(); b !== undefined; b = work.pop()) {
      for (const p of blocks[b].preds) {
        if (order.has(p) && !body.has(p)) { body.add(p); work.push(p); }
      }
    }
    loops.push({ header, latches, body });
  }
  const cycleOf = new Map<number, readonly number[]>();
  for (const comp of components(rpo, blocks, order)) for (const b of comp) if (wideningPoints.has(b)) cycleOf.set(b, comp);
  return { rpo, order, idom, wideningPoints, loops, cycleOf };
}

/** Strongly connected components with a cycle (Tarjan's algorithm, iterative). */
function components(rpo: readonly number[], blocks: Cfg['blocks'], order: ReadonlyMap<number, number>): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const out: number[][] = [];
  let next = 0;
  for (const root of rpo) {
    if (index.has(root)) continue;
    const work: { b: number; i: number }[] = [{ b: root, i: 0 }];
    index.set(root, next); low.set(root, next); next++;
    stack.push(root); onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const succs = blocks[top.b].succs;
      if (top.i < succs.length) {
        const s = succs[top.i++];
        if (!order.has(s)) continue;
        if (!index.has(s)) {
          index.set(s, next); low.set(s, next); next++;
          stack.push(s); onStack.add(s);
          work.push({ b: s, i: 0 });
        } else if (onStack.has(s)) {
          low.set(top.b, Math.min(low.get(top.b) ?? 0, index.get(s) ?? 0));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].b;
        low.set(parent, Math.min(low.get(parent) ?? 0, low.get(top.b) ?? 0));
      }
      if (low.get(top.b) === index.get(top.b)) {
        const comp: number[] = [];
        for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
          onStack.delete(x);
          comp.push(x);
          if (x === top.b) break;
        }
        const cyclic = comp.length > 1 || blocks[comp[0]].succs.includes(comp[0]);
        if (cyclic) out.push(comp);
      }
    }
  }
  return out;
}

/** Whether block a dominates block b in the graph. */
export function dominates(g: FunctionGraph, a: number, b: number): boolean {
  const entry = g.rpo[0];
  for (let x = b; ; x = g.idom.get(x) ?? entry) {
    if (x === a) return true;
    if (x === entry) return a === entry;
  }
}
