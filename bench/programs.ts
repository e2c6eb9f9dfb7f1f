// The benchmark set: one C file per program in bench/programs/, its entry (same name as the file),
// its input generator, and whether it writes its context (such programs get a fresh copy of the
// input before every run on every engine, so each run does the same work).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  atoiSumInput, bitswapInput, bubbleSortInput, crc32BitwiseInput, crc32TableInput, fibonacciInput,
  fletcher32Input, memcpyInput, movingAverageInput, muldiv64Input, packetParserInput, sieveInput,
} from './inputs.js';

export interface BenchProgram {
  /** Program name, C file name (without .c) and exported entry function. */
  name: string;
  description: string;
  input: () => Uint8Array;
  /** Writes its context: restored from the input before every run. */
  mutates: boolean;
  /** Dominated by a tight loop (where instructions per second is a meaningful figure). */
  loopHeavy: boolean;
}

/**
 * The repository root. The harness runs both as bench/harness.ts and bundled as dist/bench.js;
 * both sit one directory below the root.
 */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PROGRAMS_DIR = join(REPO_ROOT, 'bench', 'programs');

export const PROGRAMS: readonly BenchProgram[] = [
  { name: 'fletcher32', description: 'Fletcher-32 over 360 bytes (femto-container papers)', input: fletcher32Input, mutates: false, loopHeavy: true },
  { name: 'bubble_sort', description: 'bubble sort of 96 u32 in place', input: bubbleSortInput, mutates: true, loopHeavy: true },
  { name: 'bitswap', description: 'bit reversal and popcount of 256 u32', input: bitswapInput, mutates: false, loopHeavy: true },
  { name: 'crc32_bitwise', description: 'CRC-32 of 512 bytes, bit by bit', input: crc32BitwiseInput, mutates: false, loopHeavy: true },
  { name: 'crc32_table', description: 'CRC-32 of 1 KiB with a .rodata table', input: crc32TableInput, mutates: false, loopHeavy: true },
  { name: 'fibonacci', description: 'iterative u64 Fibonacci for 64 values of n', input: fibonacciInput, mutates: false, loopHeavy: true },
  { name: 'moving_average', description: 'window-16 average over 1,024 u16 samples', input: movingAverageInput, mutates: false, loopHeavy: true },
  { name: 'memcpy_bytes', description: 'byte-loop copy of 1 KiB, then FNV-1a', input: memcpyInput, mutates: true, loopHeavy: true },
  { name: 'packet_parser', description: '24 frames: Ethernet/VLAN/IPv4/UDP/TCP, byte swaps', input: packetParserInput, mutates: false, loopHeavy: false },
  { name: 'atoi_sum', description: 'parse and sum ~230 decimal numbers', input: atoiSumInput, mutates: false, loopHeavy: false },
  { name: 'muldiv64', description: 'u64 mul/div/mod mix on 64 pairs', input: muldiv64Input, mutates: false, loopHeavy: false },
  { name: 'sieve', description: 'sieve of Eratosthenes, 448-byte bit array on the stack', input: sieveInput, mutates: false, loopHeavy: true },
];

export function sourcePath(p: BenchProgram): string {
  return join(PROGRAMS_DIR, `${p.name}.c`);
}
