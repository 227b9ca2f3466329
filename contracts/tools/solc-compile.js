#!/usr/bin/env node
// Compiles a solc standard-JSON input file with solc-js and writes the
// standard-JSON output to a file (see tools/solc-js for why files, not pipes).
// Usage: solc-compile.js INPUT.json OUTPUT.json [solc args: --base-path, --include-path, --allow-paths]
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const [inputFile, outputFile, ...args] = process.argv.slice(2);

// Forge passes every source's content in the input; the import callback only
// serves a compiler that asks for a file anyway, from the same roots solc would use.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--base-path' || args[i] === '--include-path') roots.push(args[i + 1]);
  if (args[i] === '--allow-paths') roots.push(...String(args[i + 1]).split(','));
}

function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: `File not found in ${roots.join(', ')}: ${importPath}` };
}

const output = solc.compile(fs.readFileSync(inputFile, 'utf8'), { import: findImports });
fs.writeFileSync(outputFile, output);
