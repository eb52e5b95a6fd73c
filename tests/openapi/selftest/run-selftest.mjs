#!/usr/bin/env node
// Self-test of validate-responses.mjs, so that the validator cannot silently
// accept everything: good.ndjson must pass; every line of bad.ndjson (one
// defect each) must fail; an empty or missing capture must fail.
//
//   node tests/openapi/selftest/run-selftest.mjs VALIDATOR OPENAPI.yaml

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [validator, spec] = process.argv.slice(2);
if (!validator || !spec) {
  console.error('usage: run-selftest.mjs VALIDATOR OPENAPI.yaml');
  process.exit(2);
}

function run(capture) {
  const r = spawnSync(process.execPath, [validator, spec, capture], { encoding: 'utf8' });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = /validated (\d+) responses, (\d+) failed/.exec(out);
  return { status: r.status, out, total: m ? Number(m[1]) : NaN, failed: m ? Number(m[2]) : NaN };
}

function lines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
}

const good = path.join(here, 'good.ndjson');
const bad = path.join(here, 'bad.ndjson');
const empty = path.join(here, 'empty.ndjson');
const cases = [
  ['good capture passes', good, (r) => r.status === 0 && r.total === lines(good) && r.failed === 0],
  ['every bad line fails', bad, (r) => r.status === 1 && r.total === lines(bad) && r.failed === lines(bad)],
  ['empty capture fails', empty, (r) => r.status === 1],
  ['missing capture fails', path.join(here, 'no-such-capture.ndjson'), (r) => r.status === 1],
];

let passed = 0;
let failed = 0;
for (const [name, capture, ok] of cases) {
  const r = run(capture);
  if (ok(r)) {
    passed++;
    console.log(`ok: ${name}`);
  } else {
    failed++;
    console.log(`FAIL: ${name} (exit ${r.status}, ${r.total} validated, ${r.failed} failed)\n${r.out}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
