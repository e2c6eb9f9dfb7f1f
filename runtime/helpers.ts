// Helper functions a program can call by id (`call imm`, `callx %rN`). Helpers see memory only
// through a checked context, so a bad pointer from the program becomes a `helper` fault rather than
// an escape from the sandbox.
//
// The femto-container helper set (printf, memcpy, key-value stores, clocks) has the ids of RIOT's
// femto-containers (sys/include/bpf/shared.h) and exactly the semantics of the device runtime's
// runtime/cortex-m/fc/fc_helpers.c, so a container gets the same results (and the same output)
// on the host engines and on the board.
import { HelperError } from './errors.js';
import type { RegionTable } from './regions.js';

export interface HelperContext {
  regions: RegionTable;
  /** A copy of `size` bytes at `addr`; throws HelperError when they are not all readable. */
  read(addr: bigint, size: number): Uint8Array;
  /** Stores `bytes` at `addr`; throws HelperError when they are not all writable. */
  write(addr: bigint, bytes: Uint8Array): void;
}

/**
 * The checked view of a run's memory that every engine gives its helpers: reads and writes go
 * through the region table, and a bad pointer is a HelperError (a 'helper' fault). The table is
 * asked for lazily because a compiled engine lays out its regions per run.
 */
export function regionHelperContext(table: () => RegionTable): HelperContext {
  const locate = (addr: bigint, size: number, write: boolean): { bytes: Uint8Array; at: number } | undefined => {
    if (size === 0) return undefined;
    const t = table();
    const r = t.findAddr(addr, size, write);
    if (typeof r === 'string') throw new HelperError(t.describe(addr, size, write));
    return { bytes: r.bytes, at: Number(BigInt.asUintN(64, addr)) - r.base };
  };
  return {
    get regions() {
      return table();
    },
    read(addr, size) {
      const hit = locate(addr, size, false);
      return hit ? hit.bytes.slice(hit.at, hit.at + size) : new Uint8Array(0);
    },
    write(addr, bytes) {
      const hit = locate(addr, bytes.length, true);
      if (hit) hit.bytes.set(bytes, hit.at);
    },
  };
}

/** The new r0, or r0 plus a request to end the program right away. */
export type HelperResult = bigint | { r0: bigint; stop: true };

export interface HelperDef {
  id: number;
  name: string;
  call(ctx: HelperContext, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): HelperResult;
}

/** A helper that produces text (printf): engines running the program elsewhere (the board) hand it their output. */
export interface OutputHelperDef extends HelperDef {
  print(text: string): void;
}

/** Stable ids of the femto-container helper set (fc.h FC_HELPER_*). */
export const HELPER_IDS = {
  printf: 0x01,
  memcpy: 0x02,
  unwind: 0x05,
  storeLocal: 0x10,
  storeGlobal: 0x11,
  fetchLocal: 0x12,
  fetchGlobal: 0x13,
  nowMs: 0x20,
  nowUs: 0x21,
} as const;

/** Entries of a container's local store and of the shared global store (fc.h FC_KV_*_CAPACITY). */
export const KV_LOCAL_CAPACITY = 8;
export const KV_GLOBAL_CAPACITY = 16;

export interface DefaultHelperOptions {
  /** Where printf output goes (default: process.stdout when there is one). */
  print?: (text: string) => void;
  /** The global key-value store (default: `globalKv`, shared by every registry that does not pass one). */
  global?: KvStore;
  /** This registry's local store (default: a fresh one, i.e. one local store per registry = per container). */
  local?: KvStore;
  /** The clock now_ms/now_us read, in microseconds (default: performance.now()); must not go backwards. */
  nowUs?: () => number;
}

/** The all-ones result of a failed store or a missed fetch (-1 as the device returns it). */
const MINUS_ONE = 0xffff_ffff_ffff_ffffn;

export class HelperRegistry {
  private readonly byId = new Map<number, HelperDef>();

  register(def: HelperDef): this {
    this.byId.set(def.id, def);
    return this;
  }

  get(id: number): HelperDef | undefined {
    return this.byId.get(id);
  }

  /** name -> id, for loaders resolving `call` by symbol name. */
  names(): Map<string, number> {
    return new Map([...this.byId.values()].map((d) => [d.name, d.id]));
  }

  ids(): Set<number> {
    return new Set(this.byId.keys());
  }
}

/**
 * bpf_conformance's helper 5: returns its argument, and a zero argument unwinds the whole program
 * with r0 = 0 (the suite uses it to abort from inside nested calls).
 */
export const UNWIND: HelperDef = {
  id: 5,
  name: 'unwind',
  call: (_ctx, r1) => (BigInt.asUintN(64, r1) === 0n ? { r0: 0n, stop: true } : r1),
};

/** Exactly the helpers the conformance suite needs. */
export function conformanceHelpers(): HelperRegistry {
  return new HelperRegistry().register(UNWIND);
}

/** A fixed-capacity store of 32-bit values by 32-bit key (no growth: the device has no malloc). */
export class KvStore {
  private readonly entries = new Map<number, number>();

  constructor(readonly capacity: number) {}

  /** False when the key is new and the store is full (nothing changes then). */
  store(key: number, value: number): boolean {
    const k = key >>> 0;
    if (!this.entries.has(k) && this.entries.size >= this.capacity) return false;
    this.entries.set(k, value >>> 0);
    return true;
  }

  fetch(key: number): number | undefined {
    return this.entries.get(key >>> 0);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The global store every default registry shares unless given its own. */
export const globalKv = new KvStore(KV_GLOBAL_CAPACITY);

/** Throws the helper fault an inaccessible [addr, addr + size) gets (size 0 needs no memory). */
function checkAccess(ctx: HelperContext, addr: bigint, size: bigint, write: boolean): void {
  if (size === 0n) return;
  if (size > 0xffff_ffffn) throw new HelperError(`${size} bytes at 0x${BigInt.asUintN(64, addr).toString(16)} is larger than any region`);
  const r = ctx.regions.findAddr(addr, Number(size), write);
  if (typeof r === 'string') throw new HelperError(ctx.regions.describe(addr, Number(size), write));
}

/** The bytes of the NUL-terminated string at addr (without the NUL), which must lie in one readable region. */
export function readCString(ctx: HelperContext, addr: bigint): Uint8Array {
  const r = ctx.regions.findAddr(addr, 1, false);
  if (typeof r === 'string') throw new HelperError(`string: ${ctx.regions.describe(addr, 1, false)}`);
  const at = Number(BigInt.asUintN(64, addr)) - r.base;
  const end = r.bytes.indexOf(0, at);
  if (end < 0) throw new HelperError(`the string at 0x${BigInt.asUintN(64, addr).toString(16)} has no NUL before the end of ${r.name}`);
  return r.bytes.slice(at, end);
}

const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

/** One conversion's text: sign, then body, padded to width (fc_helpers.c emit). */
function pad(sign: string, body: string, width: number, left: boolean, zero: boolean): string {
  const fill = Math.max(0, width - body.length - sign.length);
  if (left) return sign + body + ' '.repeat(fill);
  if (zero) return sign + '0'.repeat(fill) + body;
  return ' '.repeat(fill) + sign + body;
}

const CONVERSIONS = new Set(['d', 'i', 'u', 'x', 'X', 'c', 's']);

/**
 * The device's printf: the format from any readable region; %d %i %u %x %X %c %s %% with flags
 * `-` and `0`, a width of up to two digits, and `l`/`ll` for 64-bit values (32-bit otherwise);
 * arguments r2..r5. Anything else faults (the device has no other conversions).
 */
export function formatPrintf(ctx: HelperContext, fmtAddr: bigint, args: readonly bigint[]): string {
  const f = readCString(ctx, fmtAddr);
  const acc = { out: '' };
  try {
    formatInto(ctx, f, args, acc);
  } catch (e) {
    // The device has written what came before the bad conversion: so does the host.
    if (e instanceof HelperError) throw new PrintfError(e.message, acc.out);
    throw e;
  }
  return acc.out;
}

/** A printf that faulted after producing `partial`. */
export class PrintfError extends HelperError {
  constructor(message: string, readonly partial: string) {
    super(message);
    this.name = 'PrintfError';
  }
}

function formatInto(ctx: HelperContext, f: Uint8Array, args: readonly bigint[], acc: { out: string }): void {
  let next = 0;
  let i = 0;
  const at = (k: number): string => (k < f.length ? String.fromCharCode(f[k]) : '');
  while (i < f.length) {
    const ch = at(i++);
    if (ch !== '%') {
      acc.out += ch;
      continue;
    }
    let left = false;
    let zero = false;
    for (;; i++) {
      if (at(i) === '-') left = true;
      else if (at(i) === '0') zero = true;
      else break;
    }
    let width = 0;
    for (let k = 0; k < 2 && at(i) >= '0' && at(i) <= '9' && at(i) !== ''; k++) width = width * 10 + Number(at(i++));
    let wide = false;
    if (at(i) === 'l') {
      wide = true;
      i++;
      if (at(i) === 'l') i++;
    }
    const conv = at(i++);
    if (conv === '%') {
      acc.out += '%';
      continue;
    }
    if (!CONVERSIONS.has(conv)) throw new HelperError(conv === '' ? 'the format ends inside a conversion' : `unsupported conversion %${conv}`);
    if (next === args.length) throw new HelperError(`more than ${args.length} conversions (arguments are r2-r5)`);
    const v = BigInt.asUintN(64, args[next++]);
    if (conv === 's') {
      acc.out += pad('', latin1(readCString(ctx, v)), width, left, false);
    } else if (conv === 'c') {
      acc.out += pad('', String.fromCharCode(Number(v & 0xffn)), width, left, false);
    } else {
      const signed = conv === 'd' || conv === 'i';
      let n = wide ? (signed ? BigInt.asIntN(64, v) : v) : signed ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v);
      const sign = n < 0n ? '-' : '';
      if (n < 0n) n = -n;
      let body = n.toString(conv === 'x' || conv === 'X' ? 16 : 10);
      if (conv === 'X') body = body.toUpperCase();
      acc.out += pad(sign, body, width, left, zero && !left);
    }
  }
}

function defaultPrint(text: string): void {
  const p = (globalThis as { process?: { stdout?: { write(s: string): unknown } } }).process;
  if (p?.stdout) p.stdout.write(text);
  else console.log(text);
}

const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

function storeHelper(id: number, name: string, kv: KvStore): HelperDef {
  return { id, name, call: (_ctx, key, value) => (kv.store(u32(key), u32(value)) ? 0n : MINUS_ONE) };
}

function fetchHelper(id: number, name: string, kv: KvStore): HelperDef {
  return {
    id,
    name,
    call(ctx, key, ptr) {
      checkAccess(ctx, ptr, 4n, true);
      const v = kv.fetch(u32(key));
      if (v === undefined) return MINUS_ONE;
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, v, true);
      ctx.write(ptr, bytes);
      return 0n;
    },
  };
}

/**
 * The femto-container helper set with unwind: what the CLI and the device offer. Each call makes a
 * registry with its own local key-value store; the global store is shared (see the options).
 */
export function defaultHelpers(opts: DefaultHelperOptions = {}): HelperRegistry {
  const print = opts.print ?? defaultPrint;
  const local = opts.local ?? new KvStore(KV_LOCAL_CAPACITY);
  const global = opts.global ?? globalKv;
  const nowUs = opts.nowUs ?? ((): number => performance.now() * 1000);
  const printf: OutputHelperDef = {
    id: HELPER_IDS.printf,
    name: 'printf',
    print,
    call(ctx, fmt, a, b, c, d) {
      let text: string;
      try {
        text = formatPrintf(ctx, fmt, [a, b, c, d]);
      } catch (e) {
        if (e instanceof PrintfError && e.partial.length > 0) print(e.partial);
        throw e;
      }
      if (text.length > 0) print(text);
      return BigInt(text.length);
    },
  };
  const memcpy: HelperDef = {
    id: HELPER_IDS.memcpy,
    name: 'memcpy',
    call(ctx, dst, src, len) {
      checkAccess(ctx, dst, len, true);
      checkAccess(ctx, src, len, false);
      if (len !== 0n) ctx.write(dst, ctx.read(src, Number(len)));
      return dst;
    },
  };
  const clock = (div: number): HelperDef['call'] => () => BigInt(Math.floor(nowUs() / div));
  return new HelperRegistry()
    .register(printf)
    .register(memcpy)
    .register(UNWIND)
    .register(storeHelper(HELPER_IDS.storeLocal, 'store_local', local))
    .register(storeHelper(HELPER_IDS.storeGlobal, 'store_global', global))
    .register(fetchHelper(HELPER_IDS.fetchLocal, 'fetch_local', local))
    .register(fetchHelper(HELPER_IDS.fetchGlobal, 'fetch_global', global))
    .register({ id: HELPER_IDS.nowMs, name: 'now_ms', call: clock(1000) })
    .register({ id: HELPER_IDS.nowUs, name: 'now_us', call: clock(1) });
}

/** The helper's output sink, when it has one (printf). */
export function outputOf(def: HelperDef | undefined): ((text: string) => void) | undefined {
  return def !== undefined && 'print' in def && typeof def.print === 'function' ? (def as OutputHelperDef).print : undefined;
}
