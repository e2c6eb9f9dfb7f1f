// ModuleBuilder's declaration cache (build's declarationsKey) and its numeric type keys: a module
// built with a key that an earlier module of the same shape filled must have exactly the bytes it
// would have had without the key, and function types that differ only in where a list ends must
// stay distinct.
import { describe, expect, it } from 'vitest';
import type { ValType } from '../backends/wasm/encode.js';
import { ModuleBuilder } from '../backends/wasm/module.js';

/** A module of one declared shape whose code depends on `k` (so only the declarations repeat). */
function shaped(k: number, pages: number, key?: string): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder({ name: `m${k}`, names: false });
  mb.importFunction('env', 'h', ['i32', 'i64'], ['i64']);
  mb.setMemory({ min: pages, max: 100, export: 'memory' });
  const g = mb.addGlobal({ type: 'i64', mutable: true, init: -1n, export: 'g' });
  const f = mb.addFunction('f', ['i32'], ['i32'], { export: 'f' });
  f.localGet(0).i32Const(k).i32Add();
  const s = mb.addFunction('s', [], []);
  s.i64Const(k).globalSet(g);
  return mb.build(key);
}

const run = (bytes: Uint8Array<ArrayBuffer>, x: number): number => {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { h: () => 0n } });
  return (inst.exports.f as (a: number) => number)(x);
};

describe('ModuleBuilder declaration cache', () => {
  it('reuses one shape\'s declarations without changing any byte', () => {
    const key = `test-shape-${Math.random()}`;
    for (let k = 0; k < 5; k++) {
      const keyed = shaped(k, 2, key);
      expect(keyed).toEqual(shaped(k, 2));
      expect(run(keyed, 40)).toBe(40 + k);
    }
  });

  it('keeps different shapes apart under different keys', () => {
    const a = shaped(1, 1, 'test-pages-1');
    const b = shaped(1, 3, 'test-pages-3');
    expect(a).not.toEqual(b);
    expect(a).toEqual(shaped(1, 1));
    expect(b).toEqual(shaped(1, 3));
  });

  it('still checks what the cached declarations refer to on first use', () => {
    const mb = new ModuleBuilder({ names: false });
    mb.exportGlobal(3, 'missing');
    expect(() => mb.build(`test-bad-${Math.random()}`)).toThrow(/export 'missing' refers to global #3/);
  });
});

describe('ModuleBuilder function types', () => {
  const cases: [ValType[], ValType[]][] = [
    [['i64'], []], [[], ['i64']], [['i32'], []], [[], ['i32']], [['i64', 'i32'], []], [['i64'], ['i32']],
    [[], ['i64', 'i32']], [['i32', 'i64'], []], [[], []], [new Array<ValType>(30).fill('i64'), new Array<ValType>(20).fill('i32')],
  ];
  it('gives each distinct signature its own type and the same signature the same one', () => {
    const mb = new ModuleBuilder();
    const first = cases.map(([p, r]) => mb.addType(p, r));
    expect(new Set(first).size).toBe(cases.length);
    expect(cases.map(([p, r]) => mb.addType([...p], [...r]))).toEqual(first);
    expect(mb.typeCount).toBe(cases.length);
  });

  it('rejects a value type it cannot encode, naming it', () => {
    const mb = new ModuleBuilder();
    expect(() => mb.addType(['f32' as ValType], [])).toThrow(/value type 'f32' is not i32 or i64/);
  });
});
