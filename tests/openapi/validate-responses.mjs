#!/usr/bin/env node
// Checks responses captured by the API tests against the OpenAPI contract.
//
//   node tests/openapi/validate-responses.mjs openapi/openapi.yaml CAPTURE.ndjson
//
// Each capture line is one response:
//   {"method":"POST","path":"/v1/mandates?x=y","status":201,
//    "content_type":"application/json","body":<parsed JSON or null>}
//
// For each: find the operation (path template + method), the response for
// the status (exact, then 4XX-style range, then default), check the content
// type is one the spec lists, validate the body with JSON Schema 2020-12
// (Ajv2020 + formats).  Problems must also be consistent: body.status is the
// HTTP status, the code has that status in x-error-codes, and the code is
// one the response's description lists after "Codes:".
//
// Any JSON media type counts as JSON (application/jwk-set+json too), and
// OAuth errors (RFC 6749 §5.2, application/json) are checked by their schema
// alone: per status, it names the `error` values allowed.  A string whose
// schema gives a JWT `contentMediaType` (application/jwt, application/*+jwt)
// and a `contentSchema` is a compact JWS: its payload must be JSON that
// validates against contentSchema (the mandate token's claims), and for
// application/X+jwt its header's `typ` must be X+jwt (RFC 9068 §2.1).  The
// signature is not checked: that is the API tests' job.
//
// An empty or missing capture fails: it means the API tests did not run.

import fs from 'node:fs';

const DEPS_HINT = 'node_modules is missing or incomplete: run `tools/dev deps` (npm ci) first';

async function loadDeps() {
  try {
    const [yaml, ajv2020, formats] = await Promise.all([
      import('yaml'),
      import('ajv/dist/2020.js'),
      import('ajv-formats'),
    ]);
    return {
      YAML: yaml.default,
      Ajv2020: ajv2020.default.default ?? ajv2020.default,
      addFormats: formats.default.default ?? formats.default,
    };
  } catch (e) {
    console.error(`validate-responses: ${DEPS_HINT} (${e.code ?? e.message})`);
    process.exit(1);
  }
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SCHEMA_ID_PREFIX = 'urn:openapi:components:schemas:';

// ---- Spec access ----------------------------------------------------------

function pointerGet(root, pointer) {
  if (!pointer.startsWith('#')) throw new Error(`only local $refs are supported: ${pointer}`);
  let node = root;
  for (const raw of pointer.slice(1).split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) {
      throw new Error(`unresolved $ref ${pointer}`);
    }
    node = node[key];
  }
  return node;
}

// Follows $ref chains on non-schema objects (responses, media types…).
function deref(spec, node) {
  const seen = new Set();
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    if (seen.has(node.$ref)) throw new Error(`$ref cycle at ${node.$ref}`);
    seen.add(node.$ref);
    node = pointerGet(spec, node.$ref);
  }
  return node;
}

// Component schemas are registered in Ajv under their own ids; a schema's
// local refs "#/components/schemas/X/..." become "<id of X>#/...".
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') {
      const m = /^#\/components\/schemas\/([^/]+)(\/.*)?$/.exec(v);
      if (!m) throw new Error(`schema $ref outside components/schemas: ${v}`);
      out.$ref = SCHEMA_ID_PREFIX + m[1] + (m[2] ? '#' + m[2] : '');
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

// contentSchema on a JWT string: Ajv keeps it as an annotation; here it
// validates the decoded payload.  Other media types stay annotations.
function jwtMediaType(mediaType) {
  const m = /^application\/(?:([a-z0-9.-]+)\+)?jwt$/.exec(mediaEssence(mediaType ?? ''));
  return m ? { typ: m[1] ? `${m[1]}+jwt` : null } : null;
}

function decodeSegment(segment) {
  if (!/^[A-Za-z0-9_-]+$/.test(segment ?? '')) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function addJwtContentSchema(ajv) {
  ajv.removeKeyword('contentSchema');
  ajv.addKeyword({
    keyword: 'contentSchema',
    schemaType: 'object',
    compile(contentSchema, parentSchema) {
      const media = jwtMediaType(parentSchema.contentMediaType);
      if (!media) return () => true;
      let validatePayload;
      const fail = (check, message, errors = [{}]) => {
        check.errors = errors.map((e) => ({
          keyword: 'contentSchema',
          params: e.params ?? {},
          message: e.keyword ? `JWT claims${e.instancePath || ''} ${e.message}` : message,
        }));
        return false;
      };
      const check = (data) => {
        if (typeof data !== 'string') return true; // `type` reports it
        const parts = data.split('.');
        if (parts.length !== 3) return fail(check, 'is not a compact JWS (three base64url parts)');
        const header = decodeSegment(parts[0]);
        if (!header || typeof header !== 'object' || Array.isArray(header)) {
          return fail(check, 'has a JWS header that is not a base64url JSON object');
        }
        if (media.typ && String(header.typ ?? '').toLowerCase().replace(/^application\//, '') !== media.typ) {
          return fail(check, `has JWS header typ ${JSON.stringify(header.typ)}, not ${media.typ}`);
        }
        const payload = decodeSegment(parts[1]);
        if (payload === undefined) return fail(check, 'has a JWS payload that is not base64url JSON');
        validatePayload ??= ajv.compile(contentSchema);
        if (validatePayload(payload)) return true;
        return fail(check, '', validatePayload.errors);
      };
      return check;
    },
  });
}

function makeAjv(deps, spec) {
  const ajv = new deps.Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  deps.addFormats(ajv);
  // OpenAPI's own schema keywords (annotations only).
  for (const k of ['example', 'discriminator', 'xml', 'externalDocs']) ajv.addKeyword(k);
  addJwtContentSchema(ajv);
  for (const [name, schema] of Object.entries(spec.components?.schemas ?? {})) {
    ajv.addSchema(rewriteRefs(schema), SCHEMA_ID_PREFIX + name);
  }
  const cache = new Map();
  return (schema) => {
    if (!cache.has(schema)) cache.set(schema, ajv.compile(rewriteRefs(schema)));
    return cache.get(schema);
  };
}

// Path templates as regexes; a concrete path matches the template with the
// fewest parameters (OpenAPI: literal paths win over templated ones).
function compilePaths(spec) {
  const base = new URL((spec.servers?.[0]?.url ?? '/'), 'http://x').pathname.replace(/\/$/, '');
  const routes = Object.keys(spec.paths ?? {}).map((template) => {
    const params = (template.match(/\{[^}]+\}/g) ?? []).length;
    const re = new RegExp('^' + base.replace(/[.*+?^$()|[\]\\]/g, '\\$&') +
      template.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+') + '$');
    return { template, re, params };
  });
  routes.sort((a, b) => a.params - b.params);
  return (path) => routes.find((r) => r.re.test(path));
}

function mediaEssence(ct) {
  return String(ct).split(';')[0].trim().toLowerCase();
}

function mediaMatches(pattern, essence) {
  const [pt, ps] = mediaEssence(pattern).split('/');
  const [et, es] = essence.split('/');
  return (pt === '*' || pt === et) && (ps === '*' || ps === es);
}

function isJson(essence) {
  return essence === 'application/json' || essence.endsWith('+json');
}

// The codes listed after "Codes:" in a response description (only names
// that are error codes count; other `backticked` words are field names).
function listedCodes(description, errorCodes) {
  const i = (description ?? '').indexOf('Codes:');
  if (i < 0) return null;
  const names = [...description.slice(i).matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]);
  const codes = names.filter((n) => Object.hasOwn(errorCodes, n));
  return codes.length ? codes : null;
}

function formatAjvErrors(errors) {
  return (errors ?? []).map((e) => {
    let msg = `${e.instancePath || '/'} ${e.message}`;
    if (e.params?.additionalProperty) msg += ` (${e.params.additionalProperty})`;
    if (e.params?.allowedValues) msg += ` (${e.params.allowedValues.join(', ')})`;
    return msg;
  }).join('; ');
}

// ---- One response ---------------------------------------------------------

function checkResponse(ctx, rec) {
  const { spec, findPath, compile, errorCodes } = ctx;
  const errors = [];
  const path = String(rec.path ?? '').split(/[?#]/)[0];
  const method = String(rec.method ?? '').toLowerCase();
  const status = rec.status;
  if (!HTTP_METHODS.includes(method)) return [`unknown method ${JSON.stringify(rec.method)}`];
  if (!Number.isInteger(status)) return [`status is not an integer: ${JSON.stringify(status)}`];

  // Where the spec has no operation, only the dispatcher's own answers are
  // in the contract (see info.description): 404 not-found and 405
  // method-not-allowed, as problems.
  let response;
  let where;
  const route = findPath(path);
  const operation = route && spec.paths[route.template][method];
  if (!route || !operation) {
    const expected = !route ? { status: 404, code: 'not-found' } : { status: 405, code: 'method-not-allowed' };
    where = !route ? 'no path in the spec matches' : `path ${route.template} has no ${method.toUpperCase()} operation`;
    if (status !== expected.status) return [`${where}, and the status is not ${expected.status}`];
    if (!spec.components?.schemas?.Problem) return [`${where}, and the spec has no Problem schema`];
    response = {
      description: `Codes: \`${expected.code}\``,
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
  } else {
    where = `${method.toUpperCase()} ${route.template}`;
    const responses = operation.responses ?? {};
    const key = [String(status), `${String(status)[0]}XX`, `${String(status)[0]}xx`, 'default']
      .find((k) => Object.hasOwn(responses, k));
    if (!key) return [`${where} lists no response for status ${status} (and no default)`];
    response = deref(spec, responses[key]);
  }

  const content = response.content ?? {};
  const types = Object.keys(content);
  if (types.length === 0) {
    if (rec.body !== null && rec.body !== undefined) errors.push('the spec gives this response no body, but one was sent');
    return errors;
  }
  if (!rec.content_type) return [`no Content-Type; the spec lists ${types.join(', ')}`];
  const essence = mediaEssence(rec.content_type);
  const mediaKey = types.find((t) => mediaEssence(t) === essence) ?? types.find((t) => mediaMatches(t, essence));
  if (!mediaKey) return [`Content-Type ${rec.content_type} is not one of ${types.join(', ')}`];
  const media = deref(spec, content[mediaKey]);
  const body = rec.body === undefined ? null : rec.body;

  if (media.schema && (isJson(essence) || typeof body === 'string')) {
    const validate = compile(media.schema);
    if (!validate(body)) errors.push(formatAjvErrors(validate.errors));
  }

  if (essence === 'application/problem+json' && body && typeof body === 'object') {
    if (body.status !== status) errors.push(`problem status ${body.status} is not the HTTP status ${status}`);
    if (typeof body.code === 'string' && errorCodes) {
      if (!Object.hasOwn(errorCodes, body.code)) {
        errors.push(`code ${body.code} is not in x-error-codes`);
      } else if (errorCodes[body.code] !== status) {
        errors.push(`code ${body.code} has status ${errorCodes[body.code]} in x-error-codes, not ${status}`);
      }
      const listed = listedCodes(response.description, errorCodes);
      if (listed && !listed.includes(body.code)) {
        errors.push(`code ${body.code} is not one this response lists (${listed.join(', ')})`);
      }
    }
  }
  return errors;
}

// ---- Main -----------------------------------------------------------------

async function main() {
  const [specPath, capturePath] = process.argv.slice(2);
  if (!specPath || !capturePath) {
    console.error('usage: validate-responses.mjs OPENAPI.yaml CAPTURE.ndjson');
    process.exit(2);
  }
  const deps = await loadDeps();
  const spec = deps.YAML.parse(fs.readFileSync(specPath, 'utf8'));
  const ctx = {
    spec,
    findPath: compilePaths(spec),
    compile: makeAjv(deps, spec),
    errorCodes: spec['x-error-codes'] ?? null,
  };

  let text;
  try {
    text = fs.readFileSync(capturePath, 'utf8');
  } catch (e) {
    console.error(`validate-responses: cannot read capture ${capturePath}: ${e.code ?? e.message}`);
    console.error('validated 0 responses, 0 failed (no capture: did the API tests run?)');
    process.exit(1);
  }

  let total = 0;
  let failed = 0;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    total++;
    let rec;
    let errors;
    try {
      rec = JSON.parse(line);
      errors = rec && typeof rec === 'object' ? checkResponse(ctx, rec) : ['not a JSON object'];
    } catch (e) {
      errors = [rec ? `validator error: ${e.message}` : `line is not JSON: ${e.message}`];
    }
    if (errors.length) {
      failed++;
      const what = rec ? `${rec.method} ${rec.path} ${rec.status}` : '?';
      console.log(`FAIL ${capturePath}:${i + 1}: ${what}: ${errors.join(' | ')}`);
    }
  });

  if (total === 0) {
    console.log(`validated 0 responses, 0 failed (capture ${capturePath} is empty: did the API tests run?)`);
    process.exit(1);
  }
  console.log(`validated ${total} responses, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`validate-responses: ${e.stack ?? e}`);
  process.exit(1);
});
