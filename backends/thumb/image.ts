// The container image the device runtime loads (IMAGE.md is the specification): a 64-byte header
// (68 bytes when the code was specialised for one context length, which the header then records),
// the Thumb code, the fault-site table, the data-section table, the helper ids, and the sections'
// initial bytes, covered by a CRC-32. The host side writes images and parses them with the same
// checks the device runtime (runtime/cortex-m/fc/fc_image.c) applies, so tests can name every
// refusal; the device never runs an image that fails one.
import { STACK_SIZE } from '../../runtime/layout.js';
import { FIRST_REGION_BASE, PAGE } from '../../runtime/regions.js';
import { MAX_REGIONS, MAX_VREGS } from './abi.js';

export interface ImageSection {
  name: string;
  /** Container address of the section's first byte. */
  vbase: number;
  bytes: Uint8Array;
  writable: boolean;
}

export interface ImageSite {
  /** Code offset of the return address of a fault-reporting call. */
  offset: number;
  pc: number;
}

export interface ImageContents {
  code: Uint8Array;
  entry: number;
  sites: ImageSite[];
  sections: ImageSection[];
  helpers: number[];
  /** IR registers the code keeps slots for (>= 11). */
  nregs: number;
  /** Container address of the context memory (after every other region). */
  memBase: number;
  /**
   * The only context length the image may run with (the size the verifier's facts assumed); absent
   * = any length. The device refuses a run with another length before any code runs.
   */
  memLength?: number;
}

export const IMAGE_MAGIC = 0x32544346; // "FCT2"
export const IMAGE_VERSION = 1;
/** The header of an image for any context length. */
export const HEADER_SIZE = 64;
/** The header of an image specialised for one context length: HEADER_SIZE + the length field. */
export const SIZED_HEADER_SIZE = 68;
/** The length field's value for "any length" (a 68-byte header may carry it). */
export const ANY_MEM_LENGTH = 0xffffffff;
export const SITE_SIZE = 8;
export const SECTION_SIZE = 16;
export const MAX_HELPERS = 256;
export const SECTION_WRITABLE = 1;

/** Header field offsets. */
export const H = {
  MAGIC: 0, VERSION: 4, HEADER_SIZE: 6, IMAGE_SIZE: 8, CRC: 12, CODE_OFF: 16, CODE_SIZE: 20, ENTRY: 24,
  SITES_OFF: 28, SITES_COUNT: 32, SECTIONS_OFF: 36, SECTIONS_COUNT: 40, HELPERS_OFF: 44, HELPERS_COUNT: 48,
  NREGS: 52, STACK_BASE: 56, MEM_BASE: 60, MEM_LENGTH: 64,
} as const;

/** An image the runtime must refuse; the message says which check failed. */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib computes it). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const align4 = (n: number): number => (n + 3) & ~3;
const alignPage = (n: number): number => Math.ceil(n / PAGE) * PAGE;

/** The container addresses the runtime derives from the section sizes (runtime/layout.ts's rule). */
export function expectedBases(sizes: readonly number[]): { sections: number[]; mem: number } {
  let next = alignPage(FIRST_REGION_BASE + STACK_SIZE) + PAGE;
  const sections = sizes.map((s) => {
    const b = next;
    next = alignPage(b + s) + PAGE;
    return b;
  });
  return { sections, mem: next };
}

export function writeImage(c: ImageContents): Uint8Array {
  const memLength = c.memLength;
  if (memLength !== undefined && !(Number.isInteger(memLength) && memLength >= 0 && memLength < ANY_MEM_LENGTH)) {
    throw new RangeError(`required context length ${memLength} is not a byte count below 2^32 - 1`);
  }
  const headerSize = memLength !== undefined ? SIZED_HEADER_SIZE : HEADER_SIZE;
  const codeOff = align4(headerSize);
  const sitesOff = align4(codeOff + c.code.length);
  const sectionsOff = sitesOff + c.sites.length * SITE_SIZE;
  const helpersOff = sectionsOff + c.sections.length * SECTION_SIZE;
  let dataOff = helpersOff + c.helpers.length * 4;
  const dataOffsets = c.sections.map((s) => {
    const at = dataOff;
    dataOff = align4(dataOff + s.bytes.length);
    return at;
  });
  const size = dataOff;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(H.MAGIC, IMAGE_MAGIC, true);
  v.setUint16(H.VERSION, IMAGE_VERSION, true);
  v.setUint16(H.HEADER_SIZE, headerSize, true);
  v.setUint32(H.IMAGE_SIZE, size, true);
  v.setUint32(H.CODE_OFF, codeOff, true);
  v.setUint32(H.CODE_SIZE, c.code.length, true);
  v.setUint32(H.ENTRY, c.entry, true);
  v.setUint32(H.SITES_OFF, sitesOff, true);
  v.setUint32(H.SITES_COUNT, c.sites.length, true);
  v.setUint32(H.SECTIONS_OFF, sectionsOff, true);
  v.setUint32(H.SECTIONS_COUNT, c.sections.length, true);
  v.setUint32(H.HELPERS_OFF, helpersOff, true);
  v.setUint32(H.HELPERS_COUNT, c.helpers.length, true);
  v.setUint32(H.NREGS, c.nregs, true);
  v.setUint32(H.STACK_BASE, FIRST_REGION_BASE, true);
  v.setUint32(H.MEM_BASE, c.memBase, true);
  if (memLength !== undefined) v.setUint32(H.MEM_LENGTH, memLength, true);
  out.set(c.code, codeOff);
  c.sites.forEach((s, i) => {
    v.setUint32(sitesOff + i * SITE_SIZE, s.offset, true);
    v.setUint32(sitesOff + i * SITE_SIZE + 4, s.pc, true);
  });
  c.sections.forEach((s, i) => {
    const at = sectionsOff + i * SECTION_SIZE;
    v.setUint32(at, s.vbase, true);
    v.setUint32(at + 4, s.bytes.length, true);
    v.setUint32(at + 8, s.writable ? SECTION_WRITABLE : 0, true);
    v.setUint32(at + 12, dataOffsets[i], true);
    out.set(s.bytes, dataOffsets[i]);
  });
  c.helpers.forEach((id, i) => v.setUint32(helpersOff + i * 4, id >>> 0, true));
  v.setUint32(H.CRC, crc32(out), true);
  return out;
}

/** Parses and validates an image with the device runtime's checks, in the same order. */
export function readImage(bytes: Uint8Array): ImageContents {
  const fail = (what: string): never => {
    throw new ImageError(`invalid image: ${what}`);
  };
  if (bytes.length < HEADER_SIZE) fail(`${bytes.length} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number): number => v.getUint32(at, true);
  if (u32(H.MAGIC) !== IMAGE_MAGIC) fail(`bad magic 0x${u32(H.MAGIC).toString(16)} (expected 0x${IMAGE_MAGIC.toString(16)}, "FCT2")`);
  if (v.getUint16(H.VERSION, true) !== IMAGE_VERSION) fail(`unsupported version ${v.getUint16(H.VERSION, true)} (this runtime reads version ${IMAGE_VERSION})`);
  const headerSize = v.getUint16(H.HEADER_SIZE, true);
  if (headerSize !== HEADER_SIZE && headerSize !== SIZED_HEADER_SIZE) fail(`header size ${headerSize} is neither ${HEADER_SIZE} nor ${SIZED_HEADER_SIZE}`);
  if (bytes.length < headerSize) fail(`${bytes.length} bytes is shorter than the ${headerSize}-byte header`);
  if (u32(H.IMAGE_SIZE) !== bytes.length) fail(`the header says ${u32(H.IMAGE_SIZE)} bytes, the image has ${bytes.length}`);
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(H.CRC, 0, true);
  const crc = crc32(copy);
  if (crc !== u32(H.CRC)) fail(`checksum mismatch (header 0x${u32(H.CRC).toString(16)}, contents 0x${crc.toString(16)})`);
  const within = (what: string, off: number, count: number, each: number): void => {
    if (off > bytes.length || count > Math.floor((bytes.length - off) / each)) fail(`${what} (${count} x ${each} bytes at ${off}) extends past the end of the image`);
  };
  const codeOff = u32(H.CODE_OFF);
  const codeSize = u32(H.CODE_SIZE);
  if (codeOff % 4 !== 0 || codeOff < headerSize) fail(`code offset ${codeOff} is not a multiple of 4 after the header`);
  within('code', codeOff, codeSize, 1);
  if (codeSize === 0 || codeSize % 2 !== 0) fail(`code size ${codeSize} is not a positive even number`);
  const entry = u32(H.ENTRY);
  if (entry >= codeSize || entry % 2 !== 0) fail(`entry offset ${entry} is not an instruction inside the ${codeSize}-byte code`);
  const sitesOff = u32(H.SITES_OFF);
  const nsites = u32(H.SITES_COUNT);
  within('fault-site table', sitesOff, nsites, SITE_SIZE);
  const sites: ImageSite[] = [];
  for (let i = 0; i < nsites; i++) {
    const offset = u32(sitesOff + i * SITE_SIZE);
    if (offset > codeSize || offset % 2 !== 0) fail(`fault site ${i} (offset ${offset}) is not inside the code`);
    if (i > 0 && offset <= sites[i - 1].offset) fail(`fault sites are not sorted (site ${i})`);
    sites.push({ offset, pc: u32(sitesOff + i * SITE_SIZE + 4) });
  }
  const secOff = u32(H.SECTIONS_OFF);
  const nsec = u32(H.SECTIONS_COUNT);
  if (nsec > MAX_REGIONS - 2) fail(`${nsec} data sections; the runtime holds at most ${MAX_REGIONS - 2}`);
  within('section table', secOff, nsec, SECTION_SIZE);
  const raw = [...Array(nsec).keys()].map((i) => {
    const at = secOff + i * SECTION_SIZE;
    return { vbase: u32(at), size: u32(at + 4), flags: u32(at + 8), data: u32(at + 12) };
  });
  const bases = expectedBases(raw.map((s) => s.size));
  const sections: ImageSection[] = raw.map((s, i) => {
    if ((s.flags & ~SECTION_WRITABLE) !== 0) fail(`section ${i} has unknown flags 0x${s.flags.toString(16)}`);
    within(`section ${i}'s bytes`, s.data, s.size, 1);
    if (s.size > 0xf000_0000 - s.vbase) fail(`section ${i} (${s.size} bytes) does not fit in the address space`);
    if (s.vbase !== bases.sections[i]) fail(`section ${i} is at 0x${s.vbase.toString(16)}, the layout puts it at 0x${bases.sections[i].toString(16)}`);
    return { name: `section${i}`, vbase: s.vbase, bytes: bytes.slice(s.data, s.data + s.size), writable: (s.flags & SECTION_WRITABLE) !== 0 };
  });
  const helpersOff = u32(H.HELPERS_OFF);
  const nhelpers = u32(H.HELPERS_COUNT);
  if (nhelpers > MAX_HELPERS) fail(`${nhelpers} helper imports; at most ${MAX_HELPERS}`);
  within('helper table', helpersOff, nhelpers, 4);
  const helpers = [...Array(nhelpers).keys()].map((i) => u32(helpersOff + i * 4));
  const nregs = u32(H.NREGS);
  if (nregs < 11 || nregs > MAX_VREGS) fail(`the code needs ${nregs} register slots; the runtime has 11..${MAX_VREGS}`);
  if (u32(H.STACK_BASE) !== FIRST_REGION_BASE) fail(`stack base 0x${u32(H.STACK_BASE).toString(16)} is not 0x${FIRST_REGION_BASE.toString(16)}`);
  if (u32(H.MEM_BASE) !== bases.mem) fail(`context base 0x${u32(H.MEM_BASE).toString(16)}, the layout puts it at 0x${bases.mem.toString(16)}`);
  const memLength = headerSize === SIZED_HEADER_SIZE && u32(H.MEM_LENGTH) !== ANY_MEM_LENGTH ? u32(H.MEM_LENGTH) : undefined;
  return { code: bytes.slice(codeOff, codeOff + codeSize), entry, sites, sections, helpers, nregs, memBase: bases.mem, ...(memLength !== undefined ? { memLength } : {}) };
}
