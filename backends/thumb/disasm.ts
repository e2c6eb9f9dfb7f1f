// Thumb-2 disassembly through capstone (ARMv7-M profile), for `--emit asm` and the encoder tests.
// Capstone tracks IT blocks within one call, so a block must be disassembled in one piece.

export interface ThumbInsn {
  address: number;
  /** 2 or 4 for instructions; 2 or 4 for data entries. */
  size: number;
  bytes: Uint8Array;
  mnemonic: string;
  opStr: string;
  /** `mnemonic opStr`, single-spaced. */
  text: string;
  /** True for bytes shown as data: a declared data range, or a halfword capstone cannot decode. */
  data: boolean;
}

/** Byte range [start, end) of a code buffer that holds data (a literal pool), not instructions. */
export interface DataRange {
  start: number;
  end: number;
}

/** The part of capstone-wasm used here. */
interface CapstoneInsn {
  address: number | bigint;
  size: number;
  bytes: Uint8Array;
  mnemonic: string;
  opStr: string;
}
interface CapstoneHandle {
  disasm(data: Uint8Array, options?: { address?: number; count?: number }): CapstoneInsn[];
  close(): void;
}
interface CapstoneModule {
  Capstone: new (arch: number, mode: number) => CapstoneHandle;
  Const: { CS_ARCH_ARM: number; CS_MODE_THUMB: number; CS_MODE_MCLASS: number };
  loadCapstone(): Promise<void>;
}

// capstone-wasm is loaded lazily (it is large and only listings need it), through a specifier
// TypeScript does not resolve: the package's export map hides its type declarations from NodeNext.
const CAPSTONE_PACKAGE: string = 'capstone-wasm';
let ready: Promise<CapstoneModule> | undefined;

async function loadModule(): Promise<CapstoneModule> {
  const mod: CapstoneModule = await import(CAPSTONE_PACKAGE);
  await mod.loadCapstone();
  return mod;
}

export class ThumbDisassembler {
  private constructor(private readonly cs: CapstoneHandle) {}

  static async create(): Promise<ThumbDisassembler> {
    ready ??= loadModule();
    const { Capstone, Const } = await ready;
    return new ThumbDisassembler(new Capstone(Const.CS_ARCH_ARM, Const.CS_MODE_THUMB | Const.CS_MODE_MCLASS));
  }

  /**
   * Every instruction of `bytes`, which start at `address`. Data ranges (offsets into `bytes`) come
   * out as `.word`/`.short` entries; a halfword capstone cannot decode comes out as `.short` and
   * disassembly resumes after it.
   */
  disasm(bytes: Uint8Array, address = 0, data: readonly DataRange[] = []): ThumbInsn[] {
    const out: ThumbInsn[] = [];
    const sorted = [...data].sort((a, b) => a.start - b.start);
    let pos = 0;
    for (const range of [...sorted, { start: bytes.length, end: bytes.length }]) {
      const start = Math.max(pos, Math.min(range.start, bytes.length));
      this.code(bytes, pos, start, address, out);
      const end = Math.min(range.end, bytes.length);
      for (let p = start; p < end; ) {
        const size = end - p >= 4 ? 4 : 2;
        out.push(dataEntry(bytes, p, size, address));
        p += size;
      }
      pos = Math.max(start, end);
    }
    return out;
  }

  /** One line per instruction: `address: text`. */
  listing(bytes: Uint8Array, address = 0, data: readonly DataRange[] = []): string {
    return this.disasm(bytes, address, data)
      .map((i) => `${i.address.toString(16).padStart(8, '0')}:  ${i.text}`)
      .join('\n');
  }

  close(): void {
    this.cs.close();
  }

  private code(bytes: Uint8Array, from: number, to: number, address: number, out: ThumbInsn[]): void {
    let p = from;
    while (p < to) {
      let decoded: CapstoneInsn[] = [];
      try {
        decoded = this.cs.disasm(bytes.subarray(p, to), { address: address + p });
      } catch {
        // capstone-wasm throws when not even the first instruction decodes.
        decoded = [];
      }
      for (const insn of decoded) {
        const text = `${insn.mnemonic} ${insn.opStr}`.trim().replace(/\s+/g, ' ');
        out.push({ address: Number(insn.address), size: insn.size, bytes: insn.bytes, mnemonic: insn.mnemonic, opStr: insn.opStr, text, data: false });
        p += insn.size;
      }
      if (p < to) {
        const size = Math.min(2, to - p);
        out.push(dataEntry(bytes, p, size, address));
        p += size;
      }
    }
  }
}

function dataEntry(bytes: Uint8Array, p: number, size: number, address: number): ThumbInsn {
  let v = 0;
  for (let k = size - 1; k >= 0; k--) v = v * 256 + bytes[p + k];
  const mnemonic = size === 4 ? '.word' : size === 2 ? '.short' : '.byte';
  const opStr = `0x${v.toString(16).padStart(size * 2, '0')}`;
  return { address: address + p, size, bytes: bytes.slice(p, p + size), mnemonic, opStr, text: `${mnemonic} ${opStr}`, data: true };
}
