#!/usr/bin/env node
// The error registry service/http/errors.def is the one source of error
// codes.  This checks that openapi/openapi.yaml says the same:
//   - x-error-codes maps exactly the registry's codes to their statuses;
//   - the Problem schema's code enum is exactly the registry's codes;
//   - every code a response description lists after "Codes:" exists and has
//     the status of that response.
// Prints every difference; exits 1 on any.
//
//   node tests/openapi/check-error-codes.mjs [errors.def] [openapi.yaml]
//   node tests/openapi/check-error-codes.mjs --print [errors.def]
//     prints the x-error-codes block generated from the registry.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const print = args[0] === '--print';
if (print) args.shift();
const defPath = args[0] ?? path.join(root, 'service/http/errors.def');
const specPath = args[1] ?? path.join(root, 'openapi/openapi.yaml');

const problems = [];

// ERR(NAME, status, "code", "title") one per line; comments are /* */.
function readFile(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    console.log(`check-error-codes: cannot read ${file}: ${e.code ?? e.message}`);
    process.exit(1);
  }
}

function readRegistry(file) {
  const text = readFile(file).replace(/\/\*[\s\S]*?\*\//g, '');
  const codes = new Map();
  for (const [i, line] of text.split('\n').entries()) {
    if (!/^\s*ERR\s*\(/.test(line)) continue;
    const m = /^\s*ERR\(\s*(\w+)\s*,\s*(\d{3})\s*,\s*"([^"]+)"\s*,/.exec(line);
    if (!m) {
      problems.push(`${file}:${i + 1}: cannot parse: ${line.trim()}`);
      continue;
    }
    if (codes.has(m[3])) problems.push(`${file}: code ${m[3]} is defined twice`);
    codes.set(m[3], Number(m[2]));
  }
  if (codes.size === 0) problems.push(`${file}: no ERR(...) lines found`);
  return codes;
}

const registry = readRegistry(defPath);

if (print) {
  console.log('x-error-codes:');
  for (const [code, status] of registry) console.log(`  ${code}: ${status}`);
  process.exit(problems.length ? 1 : 0);
}

let YAML;
try {
  YAML = (await import('yaml')).default;
} catch (e) {
  console.error('check-error-codes: node_modules is missing or incomplete: run `tools/dev deps` (npm ci) first');
  process.exit(1);
}
const spec = YAML.parse(readFile(specPath));

// x-error-codes: same codes, same statuses.
const xcodes = spec['x-error-codes'] ?? {};
if (!spec['x-error-codes']) problems.push(`${specPath}: no top-level x-error-codes`);
for (const [code, status] of registry) {
  if (!Object.hasOwn(xcodes, code)) problems.push(`x-error-codes lacks ${code} (${status})`);
  else if (xcodes[code] !== status) problems.push(`x-error-codes gives ${code} status ${xcodes[code]}; errors.def says ${status}`);
}
for (const code of Object.keys(xcodes)) {
  if (!registry.has(code)) problems.push(`x-error-codes has ${code}, which errors.def does not define`);
}

// Problem.code enum: same set.
const enumCodes = spec.components?.schemas?.Problem?.properties?.code?.enum;
if (!Array.isArray(enumCodes)) {
  problems.push(`${specPath}: components.schemas.Problem.properties.code has no enum`);
} else {
  for (const code of registry.keys()) {
    if (!enumCodes.includes(code)) problems.push(`Problem.code enum lacks ${code}`);
  }
  for (const code of enumCodes) {
    if (!registry.has(code)) problems.push(`Problem.code enum has ${code}, which errors.def does not define`);
  }
  if (new Set(enumCodes).size !== enumCodes.length) problems.push('Problem.code enum has duplicates');
}

// Every problem response lists its codes after "Codes:" in its description
// (the portal developers' docs); each listed code must have that status.
function deref(node) {
  while (node && typeof node.$ref === 'string') {
    node = node.$ref.slice(2).split('/').reduce((n, k) => n?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  }
  return node;
}
for (const [p, item] of Object.entries(spec.paths ?? {})) {
  for (const [method, op] of Object.entries(item)) {
    if (!op || typeof op !== 'object' || !op.responses) continue;
    for (const [status, ref] of Object.entries(op.responses)) {
      const response = deref(ref) ?? {};
      if (!Object.hasOwn(response.content ?? {}, 'application/problem+json')) continue;
      const where = `${method.toUpperCase()} ${p} ${status}`;
      const description = response.description ?? '';
      const i = description.indexOf('Codes:');
      // Field names and status values are in backticks too: keep the codes.
      const listed = i < 0 ? [] : [...description.slice(i).matchAll(/`([a-z0-9-]+)`/g)]
        .map((m) => m[1]).filter((name) => registry.has(name));
      if (listed.length === 0) problems.push(`${where}: the description lists no codes after "Codes:"`);
      for (const code of listed) {
        if (String(registry.get(code)) !== status) {
          problems.push(`${where} lists ${code}, whose status is ${registry.get(code)}`);
        }
      }
    }
  }
}

for (const line of problems) console.log(line);
console.log(`error codes: ${registry.size} in errors.def, ${Object.keys(xcodes).length} in x-error-codes, ` +
  `${problems.length} difference(s)`);
process.exit(problems.length ? 1 : 0);
