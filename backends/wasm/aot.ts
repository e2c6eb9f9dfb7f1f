// Ahead-of-time Wasm output: the JIT's module (same lowering, same ABI), optionally run through
// binaryen's optimizer, always validated by wabt, emitted as binary or as wat text. binaryen and
// wabt are loaded lazily, here only, so the JIT path (runtime/wasm-engine.ts) never pulls them in.
import type { Program } from '../../compiler/program.js';
import type { ProgramFacts } from '../../compiler/verify/facts.js';
import { compileToWasm } from './compile.js';
import type { HostRegionDecl } from './lower.js';

export interface AotOptions {
  /** Run binaryen's optimizer (-O2) over the module. */
  optimize: boolean;
  emit: 'wasm' | 'wat';
  facts?: ProgramFacts;
  hostRegions?: readonly HostRegionDecl[];
}

/** The module failed validation or the optimizer refused it; names the stage. */
export class AotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AotError';
  }
}

/** Features the lowering uses beyond the MVP (wabt's names). */
const WABT_FEATURES = { mutable_globals: true, sign_extension: true, multi_value: true, bulk_memory: true } as const;

async function optimizeWithBinaryen(bytes: Uint8Array): Promise<Uint8Array> {
  const binaryen = (await import('binaryen')).default;
  const F = binaryen.Features;
  const mod = binaryen.readBinary(bytes);
  try {
    mod.setFeatures(F.MutableGlobals | F.SignExt | F.Multivalue | F.BulkMemory);
    if (!mod.validate()) throw new AotError('binaryen rejected the module before optimizing it');
    binaryen.setOptimizeLevel(2);
    binaryen.setShrinkLevel(0);
    mod.optimize();
    if (!mod.validate()) throw new AotError('the module binaryen optimized does not validate');
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

export async function compileWasmAot(program: Program, opts: AotOptions): Promise<Uint8Array | string> {
  let bytes: Uint8Array = compileToWasm(program, { facts: opts.facts, hostRegions: opts.hostRegions, names: true }).bytes;
  if (opts.optimize) bytes = await optimizeWithBinaryen(bytes);
  const wabt = await (await import('wabt')).default();
  let m;
  try {
    m = wabt.readWasm(bytes, { readDebugNames: true, ...WABT_FEATURES });
  } catch (e) {
    throw new AotError(`wabt cannot read the module of ${program.origin}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    try {
      m.validate();
    } catch (e) {
      throw new AotError(`the module of ${program.origin} does not validate: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (opts.emit === 'wasm') return bytes;
    m.generateNames();
    m.applyNames();
    return m.toText({ foldExprs: false, inlineExport: true });
  } finally {
    m.destroy();
  }
}
