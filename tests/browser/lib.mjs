// Helpers of the browser tests: Debian's chromium through playwright-core
// (never a downloaded browser), axe checks, screenshots, logging in at
// dev-idp as a new user would, and a tiny demo portal on loopback.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import AxeBuilderModule from '@axe-core/playwright';

const AxeBuilder = AxeBuilderModule.default ?? AxeBuilderModule;

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with tools/dev test`);
  return v;
};

export const MACHTIGEN = () => env('MACHTIGEN_URL');

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// A random BSN that passes the 11-check, so runs never collide.
export function randomBsn() {
  for (;;) {
    const d = Array.from({ length: 8 }, () => Math.floor(Math.random() * 10));
    d[0] = 1 + Math.floor(Math.random() * 8);
    const sum = d.reduce((s, x, i) => s + x * (9 - i), 0);
    const last = sum % 11;
    if (last <= 9) return d.join('') + String(last);
  }
}

// axe: WCAG 2.1 A and AA rules, no violations allowed.
export async function checkA11y(page, label) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  const found = results.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(found, [], `axe violations on ${label} (${page.url()})`);
}

const shotDir = process.env.SCREENSHOT_DIR ?? path.resolve('build/screenshots');

// Phone and desktop screenshots of the page as it is now.
export async function screenshots(page, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  const size = page.viewportSize();
  for (const [w, h, tag] of [[390, 844, 'phone'], [1280, 900, 'desktop']]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: path.join(shotDir, `${name}-${tag}.png`), fullPage: true });
  }
  if (size) await page.setViewportSize(size);
}

// Logs in through Machtigen's "Inloggen" and the dev-idp form, as a person.
export async function login(page, { bsn, name = '', loa = 'substantieel', start = '/', a11y = false }) {
  await page.goto(MACHTIGEN() + start);
  if (start === '/' || start.startsWith('/?')) {
    await page.locator('a[href="/login"]').click();
  }
  await page.waitForURL((u) => u.toString().startsWith(env('IDP_URL')));
  if (a11y) await checkA11y(page, 'dev-idp login');
  await page.locator('#kind-person').check();
  await page.locator('#bsn').fill(bsn);
  await page.locator('#name').fill(name);
  await page.locator('#loa').selectOption(loa);
  await page.getByRole('button', { name: /Inloggen/ }).click();
  await page.waitForURL((u) => u.toString().startsWith(MACHTIGEN()));
}

export async function logout(page) {
  await page.locator('form[action="/logout"] button').click();
  await page.waitForLoadState();
}

export function psql(sql) {
  return execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', env('DATABASE_URL'), '-c', sql],
    { encoding: 'utf8' }).trim();
}

// The demo portal: "/" links to Machtigen's /oauth2/authorize with PKCE;
// "/callback" redeems the code at /oauth2/token and shows the token's claims.
export async function startPortal() {
  const url = new URL(env('DEMO_PORTAL_URL'));
  const verifier = 'v'.repeat(20) + Math.random().toString(36).slice(2).padEnd(30, 'x');
  const { createHash } = await import('node:crypto');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirect = `${url.origin}/callback`;
  const state = { last: null };
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url, url.origin);
    const page = (title, body) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!DOCTYPE html><html lang="nl"><head><meta charset="utf-8"><title>${title}</title></head>` +
        `<body><main><h1>${title}</h1>${body}</main></body></html>`);
    };
    if (u.pathname === '/') {
      const scope = u.searchParams.get('scope') ?? 'gemeente-afval';
      const q = new URLSearchParams({ response_type: 'code', client_id: env('PORTAL_CLIENT_ID'),
        redirect_uri: redirect, scope, state: 'portal-state-1', code_challenge: challenge,
        code_challenge_method: 'S256' });
      page('Demoportaal', `<p><a id="act" href="${MACHTIGEN()}/oauth2/authorize?${q}">Inloggen en kiezen voor wie</a></p>`);
      return;
    }
    if (u.pathname === '/callback') {
      const code = u.searchParams.get('code');
      let result = { error: u.searchParams.get('error') };
      if (code) {
        const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect,
          code_verifier: verifier });
        const auth = Buffer.from(`${env('PORTAL_CLIENT_ID')}:${env('PORTAL_CLIENT_SECRET')}`).toString('base64');
        const r = await fetch(`${MACHTIGEN()}/oauth2/token`, { method: 'POST', body,
          headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' } });
        result = await r.json();
        if (result.access_token) {
          result.claims = JSON.parse(Buffer.from(result.access_token.split('.')[1], 'base64url'));
          // What the portal will see on its next request: is the token live?
          const ir = await fetch(`${MACHTIGEN()}/oauth2/introspect`, { method: 'POST',
            body: new URLSearchParams({ token: result.access_token }),
            headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' } });
          result.active = (await ir.json()).active;
        }
      }
      result.state = u.searchParams.get('state');
      result.iss = u.searchParams.get('iss');
      state.last = result;
      const text = JSON.stringify(result.claims ?? result, null, 1)
        .replace(/&/g, '&amp;').replace(/</g, '&lt;');
      page('Demoportaal: terug', `<pre id="result">${text}</pre>`);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((ok) => server.listen(Number(url.port), url.hostname, ok));
  return { url: url.origin, state, close: () => new Promise((ok) => server.close(ok)) };
}
