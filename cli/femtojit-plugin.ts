#!/usr/bin/env node
// bpf_conformance's runner calls its plugin as `PLUGIN MEMHEX OPTIONS` with the program on stdin.
import { main } from './main.js';
import { exitWith, nodeIo } from './node-io.js';

// '--' keeps an options string such as '--engine wasm' from being read as our own flag.
exitWith(await main(['plugin', '--', ...process.argv.slice(2)], nodeIo));
