// eBPF engines that run on a device rather than in this process: the emulated Cortex-M4
// (runtime/cortex-m/, QEMU mps2-an386) registers here once it exists. Such an engine implements
// EbpfBenchEngine with `where: 'device'`: `unavailable` names the missing tool (qemu-system-arm,
// arm-none-eabi-gcc), `measure` returns the checksum, `cyclesPerRun` (its deterministic figure)
// and a `timing` whose nsPerRun is cycles at the board's nominal clock, so the tables can place it
// next to the host engines.
import type { EbpfBenchEngine } from './engines.js';

export const DEVICE_ENGINES: readonly EbpfBenchEngine[] = [];
