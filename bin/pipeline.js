#!/usr/bin/env node
'use strict';
// CommonJS shim for the "pipeline" bin: registers tsx's CommonJS loader (tsx 4.x exposes it as
// 'tsx/cjs/api'), then runs the TypeScript CLI. Nothing to build first.
const path = require('node:path');
const { register } = require('tsx/cjs/api');

register();
const { runCli } = require(path.join(__dirname, '..', 'src', 'cli', 'main.ts'));

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
