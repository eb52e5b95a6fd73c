// Attacks on the web forms: CSRF tokens missing or wrong, another user's
// session, expired and logged-out sessions, open redirects through
// redirect_uri and after login, HTML/script injection in every text field,
// and the security headers and cookie flags.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';

import { env, launch, login, logout, MACHTIGEN, psql, randomBsn } from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const EVIL = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"'&`;

async function user(bsn = randomBsn(), name = '') {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await login(page, { bsn, name });
  const cookie = (await ctx.cookies()).find((c) => c.name === 'machtigen-session' || c.name === '__Host-machtigen');
  const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
  return { bsn, ctx, page, cookie, csrf };
}

const countFor = (bsn) => Number(psql(`SELECT count(*) FROM mandates WHERE principal = 'bsn:${bsn}'`));
const statusOf = (id) => psql(`SELECT status FROM mandates WHERE id = '${id}'`);

async function grant(u, representative) {
  await u.page.goto(`${MACHTIGEN()}/mandates/new`);
  await u.page.locator('#service').selectOption('gemeente-afval');
  await u.page.locator('#representative').fill(representative);
  await u.page.locator('form[action="/mandates/new"] button[type=submit]').click();
  await u.page.waitForURL((x) => /\/mandates\/[0-9a-f-]{36}\?done=granted/.test(x.toString()));
  return new URL(u.page.url()).pathname.split('/')[2];
}

const form = (fields) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' },
  data: new URLSearchParams(fields).toString(), maxRedirects: 0 });

test('security headers and cookie flags', async () => {
  const u = await user();
  const r = await u.page.request.get(`${MACHTIGEN()}/`);
  const h = r.headers();
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(h['content-security-policy'], /script-src|unsafe-inline/);
  assert.match(h['content-security-policy'], /default-src 'none'/);
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.ok(u.cookie.httpOnly);
  assert.equal(u.cookie.sameSite, 'Lax');
  await u.ctx.close();
});

test('CSRF token missing or wrong: 403 and nothing changed', async () => {
  const u = await user();
  const rep = randomBsn();
  const id = await grant(u, rep);
  const before = countFor(u.bsn);
  const fields = { service: 'gemeente-afval', representative: randomBsn(), valid_from: '2030-01-01' };
  for (const csrf of [undefined, '', 'x'.repeat(43), u.csrf.slice(0, -1) + (u.csrf.endsWith('A') ? 'B' : 'A')]) {
    const body = csrf === undefined ? fields : { ...fields, csrf };
    const r = await u.page.request.post(`${MACHTIGEN()}/mandates/new`, form(body));
    assert.equal(r.status(), 403, `csrf ${csrf}`);
    assert.match(r.headers()['content-type'], /text\/html/);
    const r2 = await u.page.request.post(`${MACHTIGEN()}/mandates/${id}/revoke`,
      form(csrf === undefined ? { version: '1' } : { version: '1', csrf }));
    assert.equal(r2.status(), 403);
  }
  assert.equal(countFor(u.bsn), before);
  assert.equal(statusOf(id), 'pending');
  // With the right token the same request works.
  const ok = await u.page.request.post(`${MACHTIGEN()}/mandates/new`, form({ ...fields, csrf: u.csrf }));
  assert.equal(ok.status(), 303);
  assert.equal(countFor(u.bsn), before + 1);
  await u.ctx.close();
});

test("another user's session cannot see or change my mandate", async () => {
  const a = await user(), b = await user();
  const id = await grant(a, randomBsn());
  const seen = await b.page.request.get(`${MACHTIGEN()}/mandates/${id}`);
  assert.equal(seen.status(), 404);
  assert.doesNotMatch(await seen.text(), new RegExp(a.bsn));
  const r = await b.page.request.post(`${MACHTIGEN()}/mandates/${id}/revoke`, form({ csrf: b.csrf, version: '1' }));
  assert.equal(r.status(), 404);
  // B's cookie with A's CSRF token is refused too.
  const r2 = await b.page.request.post(`${MACHTIGEN()}/mandates/${id}/revoke`, form({ csrf: a.csrf, version: '1' }));
  assert.equal(r2.status(), 403);
  assert.equal(statusOf(id), 'pending');
  await a.ctx.close();
  await b.ctx.close();
});

test('expired and logged-out sessions no longer work', async () => {
  const u = await user();
  const hash = createHash('sha256').update(u.cookie.value).digest('hex');
  psql(`UPDATE web_sessions SET last_seen = now() - interval '2 hours' WHERE id_hash = decode('${hash}', 'hex')`);
  const r = await u.page.request.get(`${MACHTIGEN()}/mandates/new`, { maxRedirects: 0 });
  assert.equal(r.status(), 401);
  const post = await u.page.request.post(`${MACHTIGEN()}/mandates/new`,
    form({ csrf: u.csrf, service: 'gemeente-afval', representative: randomBsn(), valid_from: '2030-01-01' }));
  assert.equal(post.status(), 403);
  assert.equal(countFor(u.bsn), 0);
  await u.ctx.close();

  // Absolute timeout.
  const v = await user();
  const vh = createHash('sha256').update(v.cookie.value).digest('hex');
  psql(`UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = decode('${vh}', 'hex')`);
  assert.equal((await v.page.request.get(`${MACHTIGEN()}/activity`, { maxRedirects: 0 })).status(), 401);
  await v.ctx.close();

  // Logout ends the session on the server: the old cookie is dead.
  const w = await user();
  await logout(w.page);
  const ctx = await browser.newContext();
  await ctx.addCookies([{ ...w.cookie }]);
  const again = await ctx.request.get(`${MACHTIGEN()}/mandates/new`, { maxRedirects: 0 });
  assert.equal(again.status(), 401);
  await ctx.close();
  await w.ctx.close();

  // Login rotates the session id.
  const ctx2 = await browser.newContext();
  const page = await ctx2.newPage();
  await page.goto(`${MACHTIGEN()}/login`);
  const pre = (await ctx2.cookies()).find((c) => c.name.includes('machtigen'));
  await page.locator('#bsn').fill(randomBsn());
  await page.getByRole('button', { name: /Inloggen/ }).click();
  await page.waitForURL((x) => x.toString().startsWith(MACHTIGEN()));
  const post2 = (await ctx2.cookies()).find((c) => c.name.includes('machtigen'));
  assert.notEqual(pre.value, post2.value);
  await ctx2.close();
});

test('no open redirect through redirect_uri or after login', async () => {
  const u = await user();
  const q = new URLSearchParams({ response_type: 'code', client_id: env('PORTAL_CLIENT_ID'),
    redirect_uri: 'https://evil.example/callback', scope: 'gemeente-afval', state: 's',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
  const r = await u.page.request.get(`${MACHTIGEN()}/oauth2/authorize?${q}`, { maxRedirects: 0 });
  assert.equal(r.status(), 400);
  assert.equal(r.headers().location, undefined);
  // A registered URI with something appended is not registered either.
  q.set('redirect_uri', `${env('DEMO_PORTAL_URL')}/callback.evil.example`);
  const r2 = await u.page.request.get(`${MACHTIGEN()}/oauth2/authorize?${q}`, { maxRedirects: 0 });
  assert.equal(r2.status(), 400);
  // The choice form re-checks the redirect_uri, so editing the hidden field does not help.
  const r3 = await u.page.request.post(`${MACHTIGEN()}/oauth2/authorize`, form({ csrf: u.csrf,
    client_id: env('PORTAL_CLIENT_ID'), redirect_uri: 'https://evil.example/callback', scope: 'gemeente-afval',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', choice: 'self' }));
  assert.equal(r3.status(), 400);
  assert.equal(r3.headers().location, undefined);
  await u.ctx.close();

  for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', '\\\\evil.example']) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${MACHTIGEN()}/login?next=${encodeURIComponent(next)}`);
    await page.locator('#bsn').fill(randomBsn());
    await page.getByRole('button', { name: /Inloggen/ }).click();
    await page.waitForURL((x) => x.toString().startsWith(MACHTIGEN()));
    assert.equal(new URL(page.url()).origin, MACHTIGEN());
    assert.equal(new URL(page.url()).pathname, '/');
    await ctx.close();
  }
});

test('HTML and script in every text field come back escaped', async () => {
  // The name from the identity provider, shown in the header.
  const u = await user(randomBsn(), EVIL);
  assert.ok((await u.page.locator('header').innerText()).includes('<script>'));
  assert.equal(await u.page.evaluate(() => window.__pwned), undefined);
  assert.equal(await u.page.locator('img[src=x]').count(), 0);

  // Every field of the grant form, re-shown after an error.
  for (const field of ['representative', 'valid_from', 'valid_until', 'service']) {
    const fields = { csrf: u.csrf, service: 'gemeente-afval', representative: randomBsn(), valid_from: '2030-01-01',
      valid_until: '' };
    fields[field] = EVIL;
    const r = await u.page.request.post(`${MACHTIGEN()}/mandates/new`, form(fields));
    assert.equal(r.status(), 422, field);
    const html = await r.text();
    assert.ok(!html.includes('<script>window.__pwned'), field);
    assert.ok(!html.includes('<img src=x'), field);
    if (field !== 'service')
      assert.ok(html.includes('&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;'), field);
  }
  // In the browser: the typed text is the field's value, not markup.
  await u.page.goto(`${MACHTIGEN()}/mandates/new`);
  await u.page.locator('#representative').fill(EVIL);
  await u.page.locator('form[action="/mandates/new"] button[type=submit]').click();
  await u.page.locator('#representative-error').waitFor();
  assert.equal(await u.page.locator('#representative').inputValue(), EVIL);
  assert.equal(await u.page.evaluate(() => window.__pwned), undefined);

  // The search field of "who I act for".
  const s = await u.page.request.post(`${MACHTIGEN()}/represented`, form({ csrf: u.csrf, q: EVIL }));
  assert.equal(s.status(), 422);
  assert.ok(!(await s.text()).includes('<script>window.__pwned'));

  // The reason of a revocation, shown on the mandate page.
  const id = await grant(u, randomBsn());
  await u.page.goto(`${MACHTIGEN()}/mandates/${id}/revoke`);
  await u.page.locator('#reason').fill(EVIL);
  await u.page.getByRole('button', { name: /intrekken|revoke/i }).click();
  await u.page.waitForURL((x) => x.toString().includes('done=revoked'));
  assert.ok((await u.page.locator('.mt-reason').innerText()).includes(EVIL.slice(0, 20)));
  assert.equal(await u.page.evaluate(() => window.__pwned), undefined);
  assert.equal(await u.page.locator('img[src=x]').count(), 0);
  await u.ctx.close();
});
