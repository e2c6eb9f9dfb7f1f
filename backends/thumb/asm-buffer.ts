// A Thumb-2 code buffer: instructions, labels, PC-relative branches and literal loads whose width
// is settled once every target is known, literal pools, alignment. Offset 0 of the buffer must be
// loaded at a 4-byte aligned address (LDR literal offsets and pool alignment depend on it).
//
// Relaxation: a 'relax' reference starts narrow and is widened while its target is out of the
// 16-bit range; sizes only grow, so the layout loop ends. 'narrow' and 'wide' are the caller's
// choice and are only checked: an out-of-range target throws a ThumbEncodeError naming the range.
import {
  b as encB, bcond as encBcond, bl as encBl, cbnz as encCbnz, cbz as encCbz, condCode,
  fitsRange, ldrLiteral, ThumbEncodeError, toBytes,
} from './encode.js';
import type { Cond, Halfwords, Reg } from './encode.js';
import type { DataRange } from './disasm.js';

export type BranchWidth = 'narrow' | 'wide' | 'relax';

export interface Label {
  readonly id: number;
  readonly name: string;
}

export interface AssembledCode {
  bytes: Uint8Array;
  /** Byte ranges holding data (literal pools, `word`), for disassembly listings. */
  data: DataRange[];
  /** Byte offset of a label bound in this buffer. */
  offsetOf(label: Label): number;
}

export interface PoolOptions {
  /** Emit a branch over the pool, for a pool placed where execution falls through. */
  jumpOver?: boolean;
}

type BranchOp = 'b' | 'bcond' | 'bl' | 'cbz' | 'cbnz';

interface CodeItem { kind: 'code'; hws: number[] }
interface LabelItem { kind: 'label'; label: Label }
interface AlignItem { kind: 'align'; n: number }
interface WordItem { kind: 'word'; value: number }
interface BranchItem { kind: 'branch'; op: BranchOp; cond: Cond; rn: Reg; target: Label; width: BranchWidth; wide: boolean }
interface LiteralItem { kind: 'literal'; rt: Reg; target: Label; width: BranchWidth; wide: boolean }
type Item = CodeItem | LabelItem | AlignItem | WordItem | BranchItem | LiteralItem;

const hex = (v: number): string => `0x${v.toString(16)}`;

export class AsmBuffer {
  private readonly items: Item[] = [];
  private readonly bound = new Set<number>();
  private readonly used = new Map<number, Label>();
  private nextLabel = 0;
  private pool = new Map<number, Label>();
  /** Upper bound of the current size, every relaxable reference counted wide. */
  private worstSize = 0;
  private poolSince: number | null = null;

  /** Appends instruction halfwords (an encoder's result, or several concatenated). */
  emit(hws: Halfwords): void {
    for (const h of hws) {
      if (!Number.isInteger(h) || h < 0 || h > 0xffff) throw new ThumbEncodeError(`emit: ${String(h)} is not a halfword`);
    }
    const last = this.items[this.items.length - 1];
    if (last?.kind === 'code') last.hws.push(...hws);
    else this.items.push({ kind: 'code', hws: [...hws] });
    this.worstSize += 2 * hws.length;
  }

  label(name?: string): Label {
    const id = this.nextLabel++;
    return { id, name: name ?? `L${id}` };
  }

  bind(label: Label): void {
    if (this.bound.has(label.id)) throw new ThumbEncodeError(`label '${label.name}' is bound twice`);
    this.bound.add(label.id);
    this.items.push({ kind: 'label', label });
  }

  /** A new label bound here. */
  here(name?: string): Label {
    const l = this.label(name);
    this.bind(l);
    return l;
  }

  b(target: Label, width: BranchWidth = 'relax'): void {
    this.branch('b', target, width, 'al', 0);
  }

  bcond(cond: Cond, target: Label, width: BranchWidth = 'relax'): void {
    condCode(cond);
    this.branch(cond === 'al' ? 'b' : 'bcond', target, width, cond, 0);
  }

  bl(target: Label): void {
    this.branch('bl', target, 'wide', 'al', 0);
  }

  /** CBZ: forward only, 0..126 bytes past the instruction + 4; there is no wider form. */
  cbz(rn: Reg, target: Label): void {
    encCbz(rn, 0);
    this.branch('cbz', target, 'narrow', 'al', rn);
  }

  cbnz(rn: Reg, target: Label): void {
    encCbnz(rn, 0);
    this.branch('cbnz', target, 'narrow', 'al', rn);
  }

  /** LDR Rt, =value: a literal in the next pool (equal values share one entry). */
  ldrConst(rt: Reg, value: number, width: BranchWidth = 'relax'): void {
    if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
      throw new ThumbEncodeError(`ldr: literal ${String(value)} is not a 32-bit integer`);
    }
    ldrLiteral(rt, 0, { width: width === 'narrow' ? 'narrow' : 'wide' });
    const u = value >>> 0;
    let target = this.pool.get(u);
    if (target === undefined) {
      target = this.label(`lit_${hex(u)}`);
      this.pool.set(u, target);
    }
    this.poolSince ??= this.worstSize;
    this.ldrLabel(rt, target, width);
  }

  /** LDR Rt, [pc, #label - Align(pc, 4)]: loads the word at a label (placed with `word`). */
  ldrLabel(rt: Reg, target: Label, width: BranchWidth = 'relax'): void {
    ldrLiteral(rt, 0, { width: width === 'narrow' ? 'narrow' : 'wide' });
    this.used.set(target.id, target);
    this.items.push({ kind: 'literal', rt, target, width, wide: width === 'wide' || (width === 'relax' && rt >= 8) });
    this.worstSize += width === 'narrow' ? 2 : 4;
  }

  /** A 32-bit data word (little-endian) in the instruction stream; align first if it is loaded. */
  word(value: number): void {
    if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
      throw new ThumbEncodeError(`word: ${String(value)} is not a 32-bit integer`);
    }
    this.items.push({ kind: 'word', value: value >>> 0 });
    this.worstSize += 4;
  }

  /** Pads with NOPs to a multiple of n bytes (a power of two, 2 or more). */
  align(n: number): void {
    if (!Number.isInteger(n) || n < 2 || (n & (n - 1)) !== 0) throw new ThumbEncodeError(`align: ${String(n)} is not a power of two >= 2`);
    this.items.push({ kind: 'align', n });
    this.worstSize += n - 2;
  }

  /** Places the pending literals here (4-byte aligned). */
  placePool(opts?: PoolOptions): void {
    if (this.pool.size === 0) return;
    const after = opts?.jumpOver ? this.label('pool_end') : undefined;
    if (after) this.b(after);
    this.align(4);
    for (const [value, label] of this.pool) {
      this.bind(label);
      this.word(value);
    }
    this.pool = new Map();
    this.poolSince = null;
    if (after) this.bind(after);
  }

  /**
   * Upper bound of the bytes between the first literal load still waiting for its pool and the
   * end of the buffer, for deciding when a pool must be placed (the 32-bit LDR reaches 4095 bytes).
   */
  pendingPoolDistance(): number | null {
    return this.poolSince === null ? null : this.worstSize - this.poolSince;
  }

  /** Upper bound of the current size in bytes (every relaxable reference counted wide). */
  get maxSize(): number {
    return this.worstSize;
  }

  /** Places any pending literals at the end, settles every width and encodes. */
  finish(): AssembledCode {
    this.placePool();
    for (const label of this.used.values()) {
      if (!this.bound.has(label.id)) throw new ThumbEncodeError(`label '${label.name}' is used but never bound`);
    }
    const { addr, labels } = this.layout();
    const hws: number[] = [];
    const data: DataRange[] = [];
    this.items.forEach((item, i) => {
      const at = addr[i];
      switch (item.kind) {
        case 'code':
          hws.push(...item.hws);
          break;
        case 'label':
          break;
        case 'align':
          for (let p = at; p % item.n !== 0; p += 2) hws.push(0xbf00);
          break;
        case 'word': {
          const last = data[data.length - 1];
          if (last !== undefined && last.end === at) last.end = at + 4;
          else data.push({ start: at, end: at + 4 });
          hws.push(item.value & 0xffff, item.value >>> 16);
          break;
        }
        case 'branch':
        case 'literal':
          hws.push(...this.encodeRef(item, at, labels.get(item.target.id) ?? 0));
          break;
      }
    });
    return {
      bytes: toBytes(hws),
      data,
      offsetOf: (label: Label): number => {
        const a = labels.get(label.id);
        if (a === undefined) throw new ThumbEncodeError(`label '${label.name}' is not bound in this buffer`);
        return a;
      },
    };
  }

  private branch(op: BranchOp, target: Label, width: BranchWidth, cond: Cond, rn: Reg): void {
    if (width !== 'narrow' && width !== 'wide' && width !== 'relax') throw new ThumbEncodeError(`${op}: unknown width '${String(width)}'`);
    this.used.set(target.id, target);
    this.items.push({ kind: 'branch', op, cond, rn, target, width, wide: width === 'wide' });
    this.worstSize += width === 'narrow' ? 2 : 4;
  }

  private layout(): { addr: number[]; labels: Map<number, number> } {
    for (;;) {
      const addr: number[] = [];
      const labels = new Map<number, number>();
      let pc = 0;
      for (const item of this.items) {
        addr.push(pc);
        if (item.kind === 'label') labels.set(item.label.id, pc);
        pc += itemSize(item, pc);
      }
      let changed = false;
      this.items.forEach((item, i) => {
        if ((item.kind !== 'branch' && item.kind !== 'literal') || item.width !== 'relax' || item.wide) return;
        if (!narrowFits(item, addr[i], labels.get(item.target.id) ?? 0)) {
          item.wide = true;
          changed = true;
        }
      });
      if (!changed) return { addr, labels };
    }
  }

  private encodeRef(item: BranchItem | LiteralItem, at: number, target: number): Halfwords {
    const opts = { width: item.wide ? ('wide' as const) : ('narrow' as const) };
    try {
      if (item.kind === 'literal') return ldrLiteral(item.rt, target - ((at + 4) & ~3), opts);
      const offset = target - (at + 4);
      switch (item.op) {
        case 'b': return encB(offset, opts);
        case 'bcond': return encBcond(item.cond, offset, opts);
        case 'bl': return encBl(offset);
        case 'cbz': return encCbz(item.rn, offset);
        case 'cbnz': return encCbnz(item.rn, offset);
      }
    } catch (e) {
      if (e instanceof ThumbEncodeError) {
        throw new ThumbEncodeError(`${e.message} (at ${hex(at)}, to label '${item.target.name}' at ${hex(target)})`);
      }
      throw e;
    }
  }
}

function itemSize(item: Item, pc: number): number {
  switch (item.kind) {
    case 'code': return 2 * item.hws.length;
    case 'label': return 0;
    case 'align': return (item.n - (pc % item.n)) % item.n;
    case 'word': return 4;
    case 'branch': return item.op === 'bl' || item.wide ? 4 : 2;
    case 'literal': return item.wide ? 4 : 2;
  }
}

function narrowFits(item: BranchItem | LiteralItem, at: number, target: number): boolean {
  if (item.kind === 'literal') {
    const offset = target - ((at + 4) & ~3);
    return item.rt < 8 && offset % 4 === 0 && fitsRange('ldrLit16', offset);
  }
  return fitsRange(item.op === 'bcond' ? 'bcond16' : 'b16', target - (at + 4));
}
