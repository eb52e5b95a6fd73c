#!/usr/bin/env node
// Runs a command only when node_modules holds every devDependency of the
// root package.json at its pinned version; otherwise fails with one clear
// line.  The OpenAPI tests must never pass (or skip) without their tools.
//
//   node tests/openapi/run-with-deps.mjs COMMAND [ARGS...]

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

const wrong = [];
for (const [name, want] of Object.entries(pkg.devDependencies ?? {})) {
  let have;
  try {
    have = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    wrong.push(`${name} is not installed`);
    continue;
  }
  if (have !== want) wrong.push(`${name} is ${have}, package.json pins ${want}`);
}
if (wrong.length) {
  console.error(`FAIL: node_modules is missing or out of date (${wrong.join('; ')}): run \`tools/dev deps\``);
  process.exit(1);
}

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: run-with-deps.mjs COMMAND [ARGS...]');
  process.exit(2);
}
const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
if (r.error) {
  console.error(`FAIL: cannot run ${cmd}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
