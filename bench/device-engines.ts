// Engines that run on the emulated Cortex-M4 (QEMU mps2-an386, runtime/cortex-m/). Their figure is
// the board's exact instruction count of one run (runtime/cortex-m/board/counter.h), not wall
// time: QEMU's speed says nothing about a microcontroller's. Each engine gets every program at
// once, so that the board boots once per engine rather than once per program.
//
// - `native-m4`: the C source by arm-none-eabi-gcc -O2, one firmware holding every program
//   (the device baseline);
// - `thumb`: femtojit's Thumb-2 images on the fc device runtime (ENGINES' `thumb`);
// - `c-interp`: the eBPF interpreter of the device runtime, in C (ENGINES' `fc-interp`,
//   runtime/device-engine.ts).
import { DEVICE_INTERP } from './device-interp.js';
import { NATIVE_M4 } from './device-native.js';
import { THUMB, THUMB_GENERIC } from './device-thumb.js';
import type { DeviceBenchEngine } from './device.js';

/** Device baseline first; its instruction counts are what the others are divided by. */
export const DEVICE_ENGINES: readonly DeviceBenchEngine[] = [NATIVE_M4, THUMB, THUMB_GENERIC, DEVICE_INTERP];

/** Names in runtime/engine.ts's ENGINES that these engines measure (so the host phase skips them). */
export const DEVICE_ENGINE_NAMES: ReadonlySet<string> = new Set(['thumb', 'thumb-generic', 'fc-interp']);
