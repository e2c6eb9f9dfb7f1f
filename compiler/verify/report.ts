// The per-access verification report shown by `femtojit verify --report`: one line per load, store
// and atomic with its verdict, the region and offset range the analysis found and why; then the
// loops (bounded or budget-checked), the load-time problems, and a summary line.
import { disasmInsn } from '../disasm.js';
import type { Program } from '../program.js';
import { buildCfg } from './cfg.js';
import { functionGraph } from './dominators.js';
import type { AccessFact, ProgramFacts } from './facts.js';
import type { Diagnostic } from './structural.js';

const VERDICT_TEXT: Record<AccessFact['verdict'], string> = { proven: 'proven', check: 'check', fault: 'REJECTED' };

export function formatReport(program: Program, facts: ProgramFacts, diagnostics: readonly Diagnostic[]): string {
  const lines: string[] = [];
  const sizes = Object.entries(facts.assumedSizes).map(([k, v]) => `${k} = ${v} bytes`);
  lines.push(`${program.origin}: ${facts.access.size} memory access${facts.access.size === 1 ? '' : 'es'}; ` +
    `sizes assumed: ${sizes.length > 0 ? sizes.join(', ') : 'none (mem size unknown)'}`);
  const rejectedSlots = new Set(diagnostics.map((d) => d.index));
  const slots = [...facts.access.keys()].sort((a, b) => a - b);
  const rows = slots.map((slot) => {
    const f = facts.access.get(slot) as AccessFact;
    const rejected = f.verdict === 'fault' || rejectedSlots.has(slot);
    const where = f.region === undefined ? '?' : f.offset === undefined ? f.region
      : `${f.region}${f.offset.min === f.offset.max ? `${sign(f.offset.min)}` : `[${f.offset.min}, ${f.offset.max}]`}`;
    return {
      slot: String(slot),
      disasm: disasmInsn(program.insns, slot),
      verdict: rejected ? 'REJECTED' : VERDICT_TEXT[f.verdict],
      where,
      // Reasons start with the region and range for diagnostics; the column already shows them.
      reason: f.region !== undefined && f.reason.startsWith(f.region) && f.reason.includes(': ') ? f.reason.slice(f.reason.indexOf(': ') + 2) : f.reason,
    };
  });
  if (rows.length > 0) {
    const w = {
      slot: Math.max(4, ...rows.map((r) => r.slot.length)),
      disasm: Math.max(11, ...rows.map((r) => r.disasm.length)),
      verdict: 8,
      where: Math.max(6, ...rows.map((r) => r.where.length)),
    };
    lines.push(`${'slot'.padStart(w.slot)}  ${'instruction'.padEnd(w.disasm)}  ${'verdict'.padEnd(w.verdict)}  ${'region'.padEnd(w.where)}  reason`);
    for (const r of rows) {
      lines.push(`${r.slot.padStart(w.slot)}  ${r.disasm.padEnd(w.disasm)}  ${r.verdict.padEnd(w.verdict)}  ${r.where.padEnd(w.where)}  ${r.reason}`);
    }
  }
  const backEdges = loopBackEdges(program);
  if (backEdges.length > 0) {
    const bounded = backEdges.filter((s) => facts.boundedBackEdges.has(s));
    const checked = backEdges.filter((s) => !facts.boundedBackEdges.has(s));
    lines.push(`loops: ${backEdges.length} back edge${backEdges.length === 1 ? '' : 's'}; ` +
      `bounded (no budget check): ${bounded.length > 0 ? bounded.map((s) => `slot ${s}`).join(', ') : 'none'}; ` +
      `budget-checked: ${checked.length > 0 ? checked.map((s) => `slot ${s}`).join(', ') : 'none'}`);
  }
  for (const d of diagnostics) lines.push(`problem: ${d.message} [${d.rule}]`);
  let proven = 0, checked = 0, rejected = 0;
  for (const r of rows) {
    if (r.verdict === 'REJECTED') rejected++;
    else if (r.verdict === 'proven') proven++;
    else checked++;
  }
  lines.push(`accesses: ${proven} proven, ${checked} checked, ${rejected} rejected`);
  return lines.join('\n') + '\n';
}

const sign = (v: number): string => (v < 0 ? `${v}` : `+${v}`);

/** Slots of the jumps (block ends) that close natural loops in reachable functions. */
function loopBackEdges(program: Program): number[] {
  if (program.insns.length === 0) return [];
  const cfg = buildCfg(program);
  const out: number[] = [];
  for (const f of cfg.functions) {
    if (!f.reachable) continue;
    for (const loop of functionGraph(cfg, f.id).loops) for (const l of loop.latches) out.push(cfg.blocks[l].last);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}
