// The whole walk as a new user makes it, in Dutch and in English: the
// principal logs in at dev-idp and grants a mandate; the representative
// logs in and accepts it, then acts for the principal through the demo
// portal (authorization code flow) and the portal gets a mandate token;
// the principal sees that use in "who acted for me" and revokes; the
// representative can no longer choose the principal.  axe checks every
// page; screenshots go to build/screenshots/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { checkA11y, launch, login, logout, MACHTIGEN, randomBsn, screenshots, startPortal } from './lib.mjs';

let browser, portal;
before(async () => {
  browser = await launch();
  portal = await startPortal();
});
after(async () => {
  await portal?.close();
  await browser?.close();
});

const T = {
  nl: { grant: 'Iemand machtigen', sent: 'Uw verzoek is verstuurd', accept: 'Accepteren',
        accepted: 'U heeft het verzoek geaccepteerd', acted: 'Heeft namens u gehandeld',
        revokeLink: 'Deze machtiging intrekken', revokeYes: 'Ja, intrekken',
        revoked: 'De machtiging is ingetrokken', active: 'Geldig', continue: 'Doorgaan',
        loggedOut: 'U bent uitgelogd' },
  en: { grant: 'Give a mandate', sent: 'Your request has been sent', accept: 'Accept',
        accepted: 'You accepted the request', acted: 'Acted for you',
        revokeLink: 'Revoke this mandate', revokeYes: 'Yes, revoke',
        revoked: 'The mandate has been revoked', active: 'Valid', continue: 'Continue',
        loggedOut: 'You are logged out' },
};

for (const lang of ['nl', 'en']) {
  test(`walk: grant, accept, act through a portal, see it, revoke (${lang})`, async () => {
    const t = T[lang];
    const principal = randomBsn(), representative = randomBsn();
    const shot = (name) => (lang === 'nl' ? name : `${name}-en`);

    // The principal logs in and gives a mandate.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${MACHTIGEN()}/?lang=${lang}`);
    assert.equal(await page.locator('html').getAttribute('lang'), lang);
    await checkA11y(page, `welcome (${lang})`);
    await screenshots(page, shot('01-welcome'));
    await login(page, { bsn: principal, name: 'Anna de Vries', start: '/', a11y: true });
    await checkA11y(page, `home (${lang})`);
    await page.getByRole('link', { name: t.grant }).first().click();
    await checkA11y(page, `grant form (${lang})`);
    await screenshots(page, shot('02-grant'));

    // A wrong BSN first: the form comes back with the input and a message next to the field.
    await page.locator('#service').selectOption('gemeente-afval');
    await page.locator('#representative').fill('123456789');
    await page.locator('form[action="/mandates/new"] button[type=submit]').click();
    await assert.doesNotReject(page.locator('#representative-error').waitFor());
    assert.equal(await page.locator('#representative').inputValue(), '123456789');
    assert.equal(await page.locator('#representative').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#error-summary a[href="#representative"]').count(), 1);
    await checkA11y(page, `grant form with errors (${lang})`);
    await screenshots(page, shot('03-grant-errors'));

    await page.locator('#representative').fill(representative);
    await page.locator('form[action="/mandates/new"] button[type=submit]').click();
    await page.getByRole('heading', { name: t.sent }).waitFor();
    await checkA11y(page, `granted (${lang})`);
    await screenshots(page, shot('04-granted'));
    await logout(page);
    await page.getByRole('heading', { name: t.loggedOut }).waitFor();
    await checkA11y(page, `logged out (${lang})`);

    // The representative logs in and accepts.
    await login(page, { bsn: representative, name: 'Bram Bakker' });
    await screenshots(page, shot('05-home-representative'));
    await page.locator(`section[aria-labelledby="requests-title"] a[href^="/mandates/"]`).first().click();
    await checkA11y(page, `request (${lang})`);
    await screenshots(page, shot('06-request'));
    await page.getByRole('button', { name: t.accept, exact: true }).click();
    await page.getByRole('heading', { name: t.accepted }).waitFor();
    await checkA11y(page, `accepted (${lang})`);
    await screenshots(page, shot('07-accepted'));

    // ... and acts for the principal through the demo portal.
    await page.goto(`${portal.url}/`);
    await page.locator('#act').click();
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    await checkA11y(page, `choose whom to act for (${lang})`);
    await screenshots(page, shot('08-authorize'));
    await page.locator(`input[name=choice][value="bsn:${principal}"]`).check();
    await page.getByRole('button', { name: t.continue }).click();
    await page.waitForURL((u) => u.toString().startsWith(`${portal.url}/callback`));
    const got = portal.state.last;
    assert.equal(got.state, 'portal-state-1');
    assert.equal(got.iss, MACHTIGEN());
    assert.ok(got.access_token, JSON.stringify(got));
    assert.equal(got.claims.sub, `bsn:${principal}`);
    assert.deepEqual(got.claims.act, { sub: `bsn:${representative}` });
    assert.equal(got.claims.scope, 'gemeente-afval');
    assert.ok(got.claims.mandate?.id);
    await page.goto(`${MACHTIGEN()}/`);
    await logout(page);

    // The principal sees that use, and revokes.
    await login(page, { bsn: principal });
    await page.goto(`${MACHTIGEN()}/activity`);
    await page.getByRole('cell', { name: t.acted }).first().waitFor();
    assert.ok((await page.locator('main').innerText()).includes(representative));
    await checkA11y(page, `activity (${lang})`);
    await screenshots(page, shot('09-activity'));
    await page.goto(`${MACHTIGEN()}/`);
    assert.ok((await page.locator('section[aria-labelledby="given-title"]').innerText()).includes(t.active));
    await screenshots(page, shot('10-home-principal'));
    await page.locator('section[aria-labelledby="given-title"] a[href^="/mandates/"]').first().click();
    await page.getByRole('link', { name: t.revokeLink }).click();
    await checkA11y(page, `revoke confirmation (${lang})`);
    await screenshots(page, shot('11-revoke'));
    await page.getByRole('button', { name: t.revokeYes }).click();
    await page.getByRole('heading', { name: t.revoked }).waitFor();
    await checkA11y(page, `revoked (${lang})`);
    await screenshots(page, shot('12-revoked'));
    await logout(page);

    // The representative has lost access: the principal is no longer a choice.
    await login(page, { bsn: representative });
    await page.goto(`${portal.url}/`);
    await page.locator('#act').click();
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    assert.equal(await page.locator(`input[name=choice][value="bsn:${principal}"]`).count(), 0);
    await ctx.close();
  });
}
