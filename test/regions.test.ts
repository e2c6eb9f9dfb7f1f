import { describe, expect, it } from 'vitest';
import { FIRST_REGION_BASE, layoutRegions, PAGE, RegionLayoutError, RegionTable, type RegionSpec } from '../runtime/regions.js';

const spec = (name: string, size: number, writable = true): RegionSpec => ({ name, bytes: new Uint8Array(size), writable });

describe('layoutRegions', () => {
  it('puts the first region at 0x10000 and each next one page-aligned after a guard page', () => {
    const rs = layoutRegions([spec('stack', 4096), spec('mem', 8), spec('rodata', 5000, false), spec('bss', 0), spec('host', 1)]);
    expect(rs.map((r) => r.base)).toEqual([0x10000, 0x12000, 0x14000, 0x17000, 0x18000]);
    expect(rs[0].base).toBe(FIRST_REGION_BASE);
    // Every gap between regions is at least one whole page, so small overruns never hit a neighbour.
    for (let i = 1; i < rs.length; i++) expect(rs[i].base - (rs[i - 1].base + rs[i - 1].bytes.length)).toBeGreaterThanOrEqual(PAGE);
  });

  it('keeps the specs’ names, bytes and permissions, and is deterministic', () => {
    const specs = [spec('a', 100), spec('b', 3, false)];
    const a = layoutRegions(specs);
    expect(a[1]).toMatchObject({ name: 'b', writable: false });
    expect(a[0].bytes).toBe(specs[0].bytes);
    expect(layoutRegions(specs).map((r) => r.base)).toEqual(a.map((r) => r.base));
  });

  it('refuses a layout that does not fit below 4 GiB, naming the region', () => {
    const huge = { name: 'huge', bytes: { length: 0xffff0000 } as unknown as Uint8Array, writable: true };
    expect(() => layoutRegions([spec('stack', 4096), huge])).toThrow(RegionLayoutError);
    expect(() => layoutRegions([spec('stack', 4096), huge])).toThrow(/huge/);
  });
});

describe('RegionTable.find', () => {
  const rs = layoutRegions([spec('stack', 4096), spec('mem', 8), spec('rodata', 16, false)]);
  const t = new RegionTable(rs);
  const [stack, mem, ro] = rs;

  it('finds accesses wholly inside a region, at both ends', () => {
    expect(t.find(stack.base, 0, 8, true)).toBe(stack);
    expect(t.find(stack.base + 4088, 0, 8, false)).toBe(stack);
    expect(t.find(mem.base, 0, 8, true)).toBe(mem);
    expect(t.find(mem.base + 7, 0, 1, false)).toBe(mem);
    expect(t.find(ro.base + 12, 0, 4, false)).toBe(ro);
  });

  it('refuses accesses before, after and straddling a region end', () => {
    expect(t.find(stack.base - 1, 0, 1, false)).toBe('out-of-bounds');
    expect(t.find(stack.base - 4, 0, 8, false)).toBe('out-of-bounds');
    expect(t.find(mem.base + 8, 0, 1, false)).toBe('out-of-bounds');
    expect(t.find(mem.base + 4, 0, 8, false)).toBe('out-of-bounds');
    expect(t.find(stack.base + 4092, 0, 8, true)).toBe('out-of-bounds');
    expect(t.find(0, 0, 1, false)).toBe('out-of-bounds');
    expect(t.find(0xfffffffc, 0, 4, false)).toBe('out-of-bounds');
  });

  it('refuses addresses whose upper half is not zero', () => {
    expect(t.find(mem.base, 1, 1, false)).toBe('out-of-bounds');
    expect(t.find(mem.base, -1, 1, false)).toBe('out-of-bounds');
    expect(t.findAddr((1n << 32n) + BigInt(mem.base), 1, false)).toBe('out-of-bounds');
    expect(t.findAddr(BigInt(mem.base), 1, false)).toBe(mem);
  });

  it('refuses writes to read-only regions but allows reads', () => {
    expect(t.find(ro.base, 0, 1, true)).toBe('permission');
    expect(t.find(ro.base, 0, 1, false)).toBe(ro);
    // Straddling the end of a read-only region is out of bounds first.
    expect(t.find(ro.base + 12, 0, 8, true)).toBe('out-of-bounds');
  });

  it('gives the same answers whatever was hit before (the last-hit cache is transparent)', () => {
    const probes: [number, number, boolean][] = [
      [mem.base, 8, true], [mem.base + 1, 8, false], [stack.base, 4, false], [ro.base, 4, true],
      [ro.base, 4, false], [mem.base + 4, 4, true], [stack.base + 4096, 1, false],
    ];
    const fresh = probes.map(([a, s, w]) => new RegionTable(rs).find(a, 0, s, w));
    for (let round = 0; round < 3; round++) {
      probes.forEach(([a, s, w], i) => expect(t.find(a, 0, s, w)).toBe(fresh[i]));
    }
  });
});

describe('RegionTable.describe', () => {
  const rs = layoutRegions([spec('stack', 4096), spec('mem', 8), spec('rodata', 16, false)]);
  const t = new RegionTable(rs);

  it('names the nearest region of an address outside every region', () => {
    expect(t.describe(0x10208n + 0x1000n, 4, true)).toBe('write of 4 bytes at 0x11208 is outside every region (nearest: stack [0x10000, 0x11000))');
    expect(t.describe(0x12008n, 4, false)).toBe('read of 4 bytes at 0x12008 is outside every region (nearest: mem [0x12000, 0x12008))');
    expect(t.describe(0x13ff0n, 1, false)).toBe('read of 1 byte at 0x13ff0 is outside every region (nearest: rodata [0x14000, 0x14010))');
  });

  it('says when an access crosses a region end', () => {
    expect(t.describe(0x12004n, 8, false)).toBe('read of 8 bytes at 0x12004 crosses the end of mem [0x12000, 0x12008)');
  });

  it('says when a write targets a read-only region', () => {
    expect(t.describe(0x14004n, 1, true)).toBe('write of 1 byte at 0x14004 to read-only region rodata');
  });

  it('shows 64-bit addresses with their upper half', () => {
    expect(t.describe(0x1_0001_2000n, 2, false)).toMatch(/^read of 2 bytes at 0x100012000 is outside every region \(nearest: rodata/);
    expect(t.describe(-8n, 8, false)).toMatch(/at 0xfffffffffffffff8 is outside every region/);
    expect(t.describe(-4n, 8, false)).toBe('read of 8 bytes at 0xfffffffffffffffc wraps around the end of the address space');
  });
});
