#!/usr/bin/env node
import { main } from './main.js';
import { exitWith, nodeIo } from './node-io.js';

exitWith(await main(process.argv.slice(2), nodeIo));
