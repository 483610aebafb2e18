#!/usr/bin/env node
'use strict';
// The "pipeline" bin. In a checkout (src/ present) it runs the TypeScript through tsx's CommonJS
// loader, so there is nothing to build while developing; where only the build output is installed
// (the container image, `npm run build` without src/) it runs the compiled JavaScript with plain node.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli', 'main.ts');
const compiled = path.join(root, 'dist', 'src', 'cli', 'main.js');

let entry = compiled;
if (fs.existsSync(source)) {
  require('tsx/cjs/api').register();
  entry = source;
} else if (!fs.existsSync(compiled)) {
  process.stderr.write(`pipeline: ${compiled} is missing; run npm run build\n`);
  process.exit(2);
}
const { runCli } = require(entry);

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
