// Every form works without JavaScript: login (dev-idp), language switch,
// grant, logout, accept, act for someone (choice and cancel), the search
// of "who I act for", decline, and revoke with its confirmation.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, login, logout, MACHTIGEN, randomBsn, startPortal } from './lib.mjs';

let browser, portal;
before(async () => {
  browser = await launch();
  portal = await startPortal();
});
after(async () => {
  await portal?.close();
  await browser?.close();
});

async function grant(page, representative) {
  await page.goto(`${MACHTIGEN()}/mandates/new`);
  await page.locator('#service').selectOption('gemeente-afval');
  await page.locator('#representative').fill(representative);
  await page.locator('form[action="/mandates/new"] button[type=submit]').click();
  await page.waitForURL((u) => u.toString().includes('done=granted'));
  return new URL(page.url()).pathname.split('/')[2];
}

test('each form submits with JavaScript disabled', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  const principal = randomBsn(), representative = randomBsn();

  await login(page, { bsn: principal });
  await page.locator('a.mt-lang').click();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await page.locator('a.mt-lang').click();
  assert.equal(await page.locator('html').getAttribute('lang'), 'nl');
  const first = await grant(page, representative);
  const second = await grant(page, randomBsn());
  await page.goto(`${MACHTIGEN()}/mandates/${second}/revoke`);
  await page.locator('#reason').fill('Niet meer nodig');
  await page.locator(`form[action="/mandates/${second}/revoke"] button[type=submit]`).click();
  await page.waitForURL((u) => u.toString().includes('done=revoked'));
  await logout(page);
  assert.ok((await page.locator('main').innerText()).length > 0);

  await login(page, { bsn: representative });
  await page.goto(`${MACHTIGEN()}/mandates/${first}`);
  await page.locator(`form[action="/mandates/${first}/accept"] button`).click();
  await page.waitForURL((u) => u.toString().includes('done=accepted'));

  await page.goto(`${MACHTIGEN()}/represented`);
  await page.locator('#q').fill(principal.slice(0, 4));
  await page.locator('form[action="/represented"] button[type=submit]').first().click();
  await page.waitForLoadState();
  assert.ok((await page.locator('main').innerText()).includes(principal));

  await page.goto(`${portal.url}/`);
  await page.locator('#act').click();
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.locator('button[name=cancel]').click();
  await page.waitForURL((u) => u.toString().startsWith(`${portal.url}/callback`));
  assert.equal(portal.state.last.error, 'access_denied');

  await page.goto(`${portal.url}/`);
  await page.locator('#act').click();
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.locator(`input[name=choice][value="bsn:${principal}"]`).check();
  await page.locator('button[name=continue]').click();
  await page.waitForURL((u) => u.toString().startsWith(`${portal.url}/callback`));
  assert.equal(portal.state.last.claims?.sub, `bsn:${principal}`);
  assert.equal(portal.state.last.active, true, 'the mandate token introspects as active');

  await page.goto(`${portal.url}/`);
  await page.locator('#act').click();
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.locator('button[name=continue]').click(); // "myself" is the default
  await page.waitForURL((u) => u.toString().startsWith(`${portal.url}/callback`));
  assert.equal(portal.state.last.claims?.sub, `bsn:${representative}`);
  assert.equal(portal.state.last.claims?.act, undefined);
  assert.equal(portal.state.last.active, true, 'a token for oneself introspects as active');

  // Decline, as a representative, a second request.
  await page.goto(`${MACHTIGEN()}/`);
  await logout(page);
  const other = randomBsn();
  await login(page, { bsn: other });
  const third = await grant(page, representative);
  await logout(page);
  await login(page, { bsn: representative });
  await page.goto(`${MACHTIGEN()}/mandates/${third}`);
  await page.locator(`form[action="/mandates/${third}/decline"] button`).click();
  await page.waitForURL((u) => u.toString().includes('done=declined'));
  await ctx.close();
});
