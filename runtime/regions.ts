// Memory regions of a run and the checked lookup every engine agrees on. Addresses are 64-bit
// values; a region lives in the low 4 GiB, so an access hits one only when the upper half is 0.
// The layout is deterministic and compact because the Wasm back end uses the very same addresses
// as linear-memory offsets: the first region at 0x10000, every next one page-aligned after a
// one-page guard gap, so that a small overrun lands in a gap rather than in a neighbour.

export interface RegionSpec {
  name: string;
  bytes: Uint8Array;
  writable: boolean;
}

export interface Region extends RegionSpec {
  /** 32-bit virtual address of bytes[0]. */
  base: number;
}

/** What a checked access can fail with; the same names as the fault kinds in errors.ts. */
export type AccessFault = 'out-of-bounds' | 'permission';

export const FIRST_REGION_BASE = 0x10000;
export const PAGE = 0x1000;
const ADDR_LIMIT = 0x1_0000_0000;

/** The regions do not fit below 4 GiB; the message names the region that overflows. */
export class RegionLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegionLayoutError';
  }
}

const alignUp = (n: number): number => Math.ceil(n / PAGE) * PAGE;

export function layoutRegions(specs: readonly RegionSpec[]): Region[] {
  const out: Region[] = [];
  let base = FIRST_REGION_BASE;
  for (const s of specs) {
    const end = base + s.bytes.length;
    if (end > ADDR_LIMIT) {
      throw new RegionLayoutError(`region ${s.name} (${s.bytes.length} bytes at 0x${base.toString(16)}) does not fit below 4 GiB`);
    }
    out.push({ name: s.name, bytes: s.bytes, writable: s.writable, base });
    base = alignUp(end) + PAGE;
  }
  return out;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const bytesText = (size: number): string => (size === 1 ? '1 byte' : `${size} bytes`);

/**
 * Checked lookup over a fixed set of regions. `find` is on the interpreter's slow path and on
 * every helper access: a page table gives the candidate region in O(1), and the last hit is
 * checked first because consecutive accesses mostly hit the same region.
 */
export class RegionTable {
  readonly regions: readonly Region[];
  private readonly pages: Int32Array;
  private last: Region | undefined;
  private lastEnd = 0;

  constructor(regions: readonly Region[]) {
    this.regions = regions;
    let top = 0;
    for (const r of regions) top = Math.max(top, r.base + r.bytes.length);
    this.pages = new Int32Array(Math.ceil(top / PAGE)).fill(-1);
    regions.forEach((r, i) => {
      for (let p = Math.floor(r.base / PAGE); p * PAGE < r.base + r.bytes.length; p++) this.pages[p] = i;
    });
  }

  /** The region wholly containing [addr, addr + size), or why there is none. */
  find(addrLo: number, addrHi: number, size: number, write: boolean): Region | AccessFault {
    const lo = addrLo >>> 0;
    if ((addrHi | 0) !== 0) return 'out-of-bounds';
    let r = this.last;
    if (r === undefined || lo < r.base || lo + size > this.lastEnd) {
      const i = this.pages[Math.floor(lo / PAGE)];
      if (i === undefined || i < 0) return 'out-of-bounds';
      r = this.regions[i];
      if (lo < r.base || lo + size > r.base + r.bytes.length) return 'out-of-bounds';
      this.last = r;
      this.lastEnd = r.base + r.bytes.length;
    }
    if (write && !r.writable) return 'permission';
    return r;
  }

  /** `find` for a 64-bit address held as a bigint (helpers, tests). */
  findAddr(addr: bigint, size: number, write: boolean): Region | AccessFault {
    const a = BigInt.asUintN(64, addr);
    return this.find(Number(a & 0xffffffffn), Number(a >> 32n), size, write);
  }

  /** The user-facing reason an access fails (or succeeds), naming the nearest region. */
  describe(addr: bigint, size: number, write: boolean): string {
    const a = BigInt.asUintN(64, addr);
    const what = `${write ? 'write' : 'read'} of ${bytesText(size)} at ${hex(a)}`;
    const end = a + BigInt(size);
    for (const r of this.regions) {
      const rb = BigInt(r.base);
      const re = rb + BigInt(r.bytes.length);
      if (a >= rb && a < re) {
        if (end > re) return `${what} crosses the end of ${span(r)}`;
        if (write && !r.writable) return `${what} to read-only region ${r.name}`;
        return `${what} is inside ${span(r)}`;
      }
    }
    if (end > 1n << 64n) return `${what} wraps around the end of the address space`;
    const near = this.nearest(a, end);
    return `${what} is outside every region${near ? ` (nearest: ${span(near)})` : ''}`;
  }

  private nearest(a: bigint, end: bigint): Region | undefined {
    let best: Region | undefined;
    let bestDist = 0n;
    for (const r of this.regions) {
      const rb = BigInt(r.base);
      const re = rb + BigInt(r.bytes.length);
      const dist = end <= rb ? rb - end : a >= re ? a - re : 0n;
      if (best === undefined || dist < bestDist) {
        best = r;
        bestDist = dist;
      }
    }
    return best;
  }
}

function span(r: Region): string {
  return `${r.name} [${hex(r.base)}, ${hex(r.base + r.bytes.length)})`;
}
