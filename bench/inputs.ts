// Deterministic context bytes for every benchmark program. Each generator seeds its own PRNG, so an
// input never depends on which programs ran before it, and the same bytes reach every engine.

/** mulberry32: tiny, fast and good enough to make inputs that are not trivially regular. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

function u32Words(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v >>> 0, true));
  return out;
}

const TEXT =
  'femto-containers run small, untrusted, updatable programs on microcontrollers; ' +
  'the same eBPF bytecode is verified once and then runs on every engine. ';

/** 360 bytes of text, the buffer size of the femto-container papers' Fletcher-32 benchmark. */
export function fletcher32Input(): Uint8Array {
  const out = new Uint8Array(360);
  for (let i = 0; i < out.length; i++) out[i] = TEXT.charCodeAt(i % TEXT.length);
  return out;
}

/** 96 random 32-bit words: about 4,500 compare-and-swap steps for bubble sort. */
export function bubbleSortInput(): Uint8Array {
  const rng = new Rng(0xb0bb1e);
  return u32Words(Array.from({ length: 96 }, () => rng.u32()));
}

export function bitswapInput(): Uint8Array {
  return new Rng(0xb175).bytes(1024);
}

export function crc32BitwiseInput(): Uint8Array {
  return new Rng(0xc3c1).bytes(512);
}

export function crc32TableInput(): Uint8Array {
  return new Rng(0xc3c2).bytes(1024);
}

/** 64 values of n in [40, 93]: F(93) is the last Fibonacci number that fits 64 bits. */
export function fibonacciInput(): Uint8Array {
  const rng = new Rng(0xf1b0);
  return u32Words(Array.from({ length: 64 }, () => rng.int(40, 93)));
}

/** Window 16, then 1,024 16-bit samples: a noisy ramp, like a sensor reading. */
export function movingAverageInput(): Uint8Array {
  const rng = new Rng(0xa7e);
  const n = 1024;
  const out = new Uint8Array(4 + n * 2);
  const view = new DataView(out.buffer);
  view.setUint32(0, 16, true);
  for (let i = 0; i < n; i++) view.setUint16(4 + i * 2, (i * 37 + rng.int(0, 4095)) & 0xffff, true);
  return out;
}

/** 2 KiB: 1 KiB of source and 1 KiB of (stale) destination. */
export function memcpyInput(): Uint8Array {
  return new Rng(0x3e3c).bytes(2048);
}

/** About 230 decimal numbers, some negative, separated by spaces and newlines. */
export function atoiSumInput(): Uint8Array {
  const rng = new Rng(0xa701);
  const parts: string[] = [];
  for (let i = 0; i < 230; i++) {
    const digits = rng.int(1, 12);
    let s = String(rng.int(1, 9));
    for (let d = 1; d < digits; d++) s += String(rng.int(0, 9));
    if (rng.int(0, 3) === 0) s = `-${s}`;
    parts.push(s + (i % 10 === 9 ? '\n' : ' '));
  }
  return new TextEncoder().encode(parts.join(''));
}

/** 64 pairs of 64-bit words, with divisors spread over every magnitude. */
export function muldiv64Input(): Uint8Array {
  const rng = new Rng(0x3d1f);
  const out = new Uint8Array(64 * 16);
  const view = new DataView(out.buffer);
  for (let p = 0; p < 64; p++) {
    view.setBigUint64(p * 16, rng.u64(), true);
    const bits = BigInt(rng.int(1, 64));
    view.setBigUint64(p * 16 + 8, rng.u64() >> (64n - bits), true);
  }
  return out;
}

/** Four sieve limits: the largest the 448-byte stack bit array allows, then smaller ones. */
export function sieveInput(): Uint8Array {
  return u32Words([7168, 5000, 3001, 1000]);
}

// --- packet_parser -------------------------------------------------------------------------------

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

interface FrameSpec {
  vlans: number;
  ethertype: number;
  proto: number;
  /** IPv4 header in 32-bit words (5 = no options). */
  ihl: number;
  payload: number;
  corruptChecksum: boolean;
}

function ipv4Checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i] << 8) | header[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function frame(rng: Rng, spec: FrameSpec): Uint8Array {
  const bytes: number[] = [...rng.bytes(12)];
  const be16 = (v: number): void => void bytes.push((v >>> 8) & 0xff, v & 0xff);
  const tagTypes = [ETH_P_8021AD, ETH_P_8021Q];
  for (let t = 0; t < spec.vlans; t++) {
    be16(spec.vlans === 2 ? tagTypes[t] : ETH_P_8021Q);
    be16(rng.int(1, 4094) | (rng.int(0, 7) << 13));
  }
  be16(spec.ethertype);
  if (spec.ethertype !== ETH_P_IP) return new Uint8Array([...bytes, ...rng.bytes(28 + spec.payload)]);
  const l4 = spec.proto === 17 ? 8 : spec.proto === 6 ? 20 : 8;
  const header = new Uint8Array(spec.ihl * 4);
  const view = new DataView(header.buffer);
  header[0] = 0x40 | spec.ihl;
  header[1] = rng.int(0, 255) & 0xfc;
  view.setUint16(2, header.length + l4 + spec.payload);
  view.setUint16(4, rng.int(0, 0xffff));
  view.setUint16(6, 0x4000);
  header[8] = rng.int(1, 255);
  header[9] = spec.proto;
  view.setUint32(12, rng.u32());
  view.setUint32(16, rng.u32());
  for (let i = 20; i < header.length; i++) header[i] = 1; // NOP options
  view.setUint16(10, ipv4Checksum(header) ^ (spec.corruptChecksum ? 0x0100 : 0));
  const l4bytes = rng.bytes(l4);
  if (spec.proto === 17) new DataView(l4bytes.buffer).setUint16(4, l4 + spec.payload);
  return new Uint8Array([...bytes, ...header, ...l4bytes, ...rng.bytes(spec.payload)]);
}

/** 24 frames: mostly IPv4 UDP/TCP with 0-2 VLAN tags, some with options or a bad checksum, some not IPv4. */
export function packetParserInput(): Uint8Array {
  const rng = new Rng(0xe7e7);
  const records: number[] = [];
  for (let i = 0; i < 24; i++) {
    const kind = i % 8;
    const spec: FrameSpec = {
      vlans: i % 3,
      ethertype: kind === 6 ? ETH_P_IPV6 : kind === 7 ? ETH_P_ARP : ETH_P_IP,
      proto: kind % 3 === 0 ? 6 : kind === 5 ? 1 : 17,
      ihl: kind === 4 ? 7 : 5,
      payload: rng.int(0, 48),
      corruptChecksum: kind === 2 && i > 8,
    };
    const f = frame(rng, spec);
    records.push(f.length & 0xff, f.length >>> 8, ...f);
    while (records.length % 4 !== 0) records.push(0);
  }
  return new Uint8Array(records);
}
