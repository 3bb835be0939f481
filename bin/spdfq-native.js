#!/usr/bin/env node
// Thin launcher: the CLI is written in TypeScript and compiled to dist/ by `npm install`.
'use strict';
let cli;
try {
  cli = require('../dist/lib/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/lib/cli/main.js')) {
    console.error('spdfq-native: the TypeScript build is missing (dist/lib/cli/main.js). Run `npm install` (or `npm run build:ts`) in the package folder.');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`spdfq-native: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
