// The guard console in real headless Chromium (Debian's, installed by
// scripts/browser-deps.sh) against a real hub: two guards see a panic at
// once, one attends it and the other sees who did, and a panic raised while
// the hub is down appears exactly once on both after it comes back. Then
// each state in which alerts cannot arrive or cannot sound: a lost
// connection, a session that cannot be renewed (tokenUrl served by a small
// backend stand-in that insists on its cookie), sound blocked by the
// autoplay policy; each must turn the console alarming in plain Spanish and
// clear when the cause is gone. Screenshots of each state go to test/output/
// (docs/console/ holds copies).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join } from 'node:path';
import { useHubTests, startConsoleHub, restartHub, tokenFor, db, clientDir, poll, mintToken, nowS } from './lib/hub.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const OUT = join(clientDir, 'test', 'output');
const WAIT = 30_000; // generous: two cores shared with other test runs
// CONSOLE_STATIC_FROM_DISK=1 answers /console/* and /js/* from this folder
// instead of the hub (the WebSocket still goes to the hub). Only for
// checking the console while the hub's static serving is broken; the
// default exercises the hub's HUB_CONSOLE_DIR serving as deployed.
const FROM_DISK = process.env.CONSOLE_STATIC_FROM_DISK === '1';
const MIME = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript' };

useHubTests();

let browser; // sound allowed without a gesture (--autoplay-policy=no-user-gesture-required)
let mutedBrowser; // the browsers' usual policy: no sound before a gesture
let database;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/browser-deps.sh`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core is missing: run scripts/browser-deps.sh (${err.message})`);
  }
  mkdirSync(OUT, { recursive: true });
  // launch() gives every run a fresh temporary profile (its own --user-data-dir).
  const launch = (autoplay) => chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      `--autoplay-policy=${autoplay}`,
      // Pages fulfilled by Playwright count as non-local: let them reach the hub on 127.0.0.1.
      ...(FROM_DISK ? ['--disable-features=LocalNetworkAccessChecks'] : [])],
  });
  browser = await launch('no-user-gesture-required');
  mutedBrowser = await launch('user-gesture-required');
  database = await db();
});

after(async () => {
  await browser?.close();
  await mutedBrowser?.close();
});

/** A page in a context of its own (its own sessionStorage and cookies) of b, logging what the page says. */
async function newPage(b, label, viewport, cookies = []) {
  const context = await b.newContext({ viewport, locale: 'es-CO' });
  if (cookies.length) await context.addCookies(cookies);
  const page = await context.newPage();
  page.label = label;
  page.logs = [];
  page.on('console', (m) => page.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.logs.push(`pageerror: ${e.message}`));
  if (FROM_DISK) {
    await context.route(/\/(console|js)\//, (route) => {
      const { pathname } = new URL(route.request().url());
      const [, top, rest] = pathname.match(/^\/(console|js)\/(.*)$/);
      const file = join(clientDir, top === 'js' ? 'src' : 'console', rest || 'index.html');
      return route.fulfill({ path: file, contentType: MIME[extname(file)] ?? 'application/octet-stream' });
    });
  }
  return page;
}

/** A console page in its own context (its own sessionStorage), signed in with token. */
async function consolePage(hub, token, label, viewport, b = browser) {
  const page = await newPage(b, label, viewport);
  await page.goto(`${hub.url}/console/`);
  assert.equal(new URL(page.url()).search, '', 'nothing in the query string');
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Ingresar' }).click();
  try {
    await connected(page);
  } catch (err) {
    await shot(page, `failure-signin-${label}`).catch(() => {});
    const shown = await page.evaluate(() => `${document.querySelector('#conn-text')?.textContent} / ${document.querySelector('#status-detail')?.textContent}`).catch((e) => e.message);
    err.message += `\n${label}: the page shows '${shown}'; page log: ${page.logs.join(' | ')}`;
    throw err;
  }
  assert.ok(!page.url().includes(token.slice(0, 20)), 'the token never goes in the URL');
  return page;
}

function connected(page) {
  return page.locator('#conn-text').filter({ hasText: /^Conectado$/ }).waitFor({ timeout: WAIT });
}

async function shot(page, name) {
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The panic cards of a page: [{id, text}]. */
function alertsOf(page) {
  return page.locator('.alert').evaluateAll((els) => els.map((e) => ({ id: Number(e.dataset.eventId), text: e.textContent })));
}

function alertFor(page, unit) {
  return page.locator('.alert', { hasText: `Unidad ${unit}` });
}

test('two guard consoles: a panic appears on both, Atender on one shows who on the other, and a hub crash loses and repeats nothing', async (t) => {
  const T = await database.newTenant('console');
  const hub1 = await startConsoleHub();
  const carlos = await database.insertUser(T, { name: 'Carlos Pérez', role: 'GUARD' });
  const ana = await database.insertUser(T, { name: 'Ana Gómez', role: 'GUARD' });
  const maria = await database.insertUser(T, { name: 'María López', role: 'RESIDENT', unitId: '502' });
  const jorge = await database.insertUser(T, { name: 'Jorge Ruiz', role: 'RESIDENT', unitId: '101' });

  const p1 = await consolePage(hub1, tokenFor(hub1, { sub: carlos, tenant: T, role: 'guard' }), 'Carlos', { width: 1280, height: 800 });
  const p2 = await consolePage(hub1, tokenFor(hub1, { sub: ana, tenant: T, role: 'guard' }), 'Ana', { width: 820, height: 1180 }); // a tablet
  const pages = [p1, p2];
  const logs = () => pages.map((p) => `${p.label}: ${p.logs.slice(-10).join(' | ')}`).join('\n');

  try {
    // 1. A panic reaches both consoles.
    await database.insertPanic(T, { userId: maria, unitId: '502', message: 'Hay alguien en el parqueadero' });
    for (const p of pages) {
      const card = alertFor(p, '502');
      await card.waitFor({ timeout: WAIT });
      const text = await card.textContent();
      assert.match(text, /PÁNICO/);
      assert.match(text, /María López/);
      assert.match(text, /hace \d+ s/);
      await card.getByRole('button', { name: /Atender/ }).waitFor({ timeout: WAIT });
      assert.equal(await p.locator('#alerts').getAttribute('aria-live'), 'assertive');
    }
    await shot(p1, 'console-1-panic-desktop');
    await shot(p2, 'console-1-panic-tablet');

    // 2. Carlos attends it: Ana's console (and his) say so, and the button is gone.
    await alertFor(p1, '502').getByRole('button', { name: /Atender/ }).click();
    for (const p of pages) {
      await alertFor(p, '502').getByText('Atendida por Carlos Pérez').waitFor({ timeout: WAIT });
      assert.equal(await alertFor(p, '502').getByRole('button').count(), 0, `${p.label}: no Atender button on a claimed alert`);
    }
    await shot(p2, 'console-2-claimed-tablet');

    // 3. The hub dies; a panic is raised meanwhile; the hub comes back on the same port.
    await hub1.kill('SIGKILL');
    for (const p of pages) await p.locator('#conn-text').filter({ hasText: 'Reconectando' }).waitFor({ timeout: WAIT });
    await shot(p1, 'console-3-reconnecting');
    await database.insertPanic(T, { userId: jorge, unitId: '101', message: 'Incendio en la cocina' });
    const hub2 = await restartHub(hub1);
    t.after(() => hub2.stop());
    for (const p of pages) {
      await connected(p);
      await alertFor(p, '101').waitFor({ timeout: WAIT });
    }
    // A barrier: an announcement emitted after everything else; once it shows, all earlier events have arrived.
    await database.emit(T, 'announcement', ['all'], { title: 'Barrera de prueba', type: 'general' });
    for (const p of pages) await p.locator('#activity li', { hasText: 'Barrera de prueba' }).waitFor({ timeout: WAIT });
    for (const p of pages) {
      const cards = await alertsOf(p);
      assert.equal(cards.length, 2, `${p.label}: exactly two alerts, got ${JSON.stringify(cards)}`);
      assert.equal(new Set(cards.map((c) => c.id)).size, 2, `${p.label}: no alert twice`);
      assert.equal(await alertFor(p, '101').count(), 1, `${p.label}: the panic raised during the outage once`);
      assert.match(await alertFor(p, '502').textContent(), /Atendida por Carlos Pérez/, `${p.label}: the claim survived the reconnection`);
    }

    // 4. Ana attends the new one with the keyboard alone (Tab to the button, Enter).
    let focused = '';
    for (let i = 0; i < 15 && !/Atender pánico de Unidad 101/.test(focused); i++) {
      await p2.keyboard.press('Tab');
      focused = await p2.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '');
    }
    assert.match(focused, /Atender pánico de Unidad 101/, 'the Atender button is reachable with Tab');
    const outline = await p2.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused button shows a focus ring');
    await shot(p2, 'console-4-keyboard-focus');
    await p2.keyboard.press('Enter');
    for (const p of pages) await alertFor(p, '101').getByText('Atendida por Ana Gómez').waitFor({ timeout: WAIT });
    await shot(p1, 'console-5-final-desktop');
    await shot(p2, 'console-5-final-tablet');

    // 5. A reload resumes from the saved seq: still two alerts, none repeated.
    await p1.reload();
    await connected(p1);
    await database.emit(T, 'announcement', ['all'], { title: 'Segunda barrera', type: 'general' });
    await p1.locator('#activity li', { hasText: 'Segunda barrera' }).waitFor({ timeout: WAIT });
    const after = await alertsOf(p1);
    assert.equal(after.length, 2, `after a reload: ${JSON.stringify(after)}`);
    for (const p of pages) assert.deepEqual(p.logs.filter((l) => l.startsWith('pageerror')), [], `${p.label}: no page errors`);
  } catch (err) {
    for (const [i, p] of pages.entries()) await shot(p, `failure-${i + 1}`).catch(() => {});
    err.message += `\n--- page logs ---\n${logs()}`;
    throw err;
  }
});

// ----- the states in which alerts cannot arrive or cannot sound ---------

const DESK = { width: 1024, height: 640 }; // small enough for light screenshots
const COOKIE = { name: 'armonia_session', value: 'sesion-de-prueba' };
const OFFLINE_TEXT = /Sin conexión con la central: las alertas de pánico NO están llegando/;
const EXPIRED_TEXT = /La sesión de la consola terminó: las alertas de pánico NO están llegando/;
const SOUND_TEXT = /El sonido está bloqueado: toque aquí para activar la alarma/;

/** What the console reports about itself (window.armoniaConsole.status()). */
function status(page) {
  return page.evaluate(() => window.armoniaConsole.status());
}

/** The page's visible text. */
function shown(page) {
  return page.locator('body').innerText();
}

/** A screenshot of one state, at the viewport's size: test/output/state-<name>.png. */
function stateShot(page, name) {
  return page.screenshot({ path: join(OUT, `state-${name}.png`) });
}

/**
 * The backend's token endpoint as a deployment provides it: a JWT for claims
 * signed with the hub's secret, only to requests carrying the session cookie
 * (so a token served proves the browser sent its credentials), with CORS for
 * the console's origin. Set .mode to 'ok' or 'fail' (401) and .ttlS for the
 * life of the tokens it hands out.
 */
async function startTokenServer(hub, claims) {
  const s = { mode: 'ok', ttlS: 3600, served: 0, refused: 0, withoutCookie: 0, origins: new Set() };
  const server = createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin) {
      s.origins.add(origin);
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    res.setHeader('Cache-Control', 'no-store');
    const hasCookie = (req.headers.cookie ?? '').split(/;\s*/).includes(`${COOKIE.name}=${COOKIE.value}`);
    if (!hasCookie) s.withoutCookie++;
    if (!hasCookie || s.mode !== 'ok') {
      s.refused++;
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('no session');
      return;
    }
    s.served++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: tokenFor(hub, claims, s.ttlS) }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.url = `http://127.0.0.1:${server.address().port}/hub-token`;
  s.cookies = [{ ...COOKIE, url: s.url }];
  s.close = () => new Promise((resolve) => server.close(resolve));
  return s;
}

/** Adds the page logs and a screenshot to a failure. */
async function explain(err, page) {
  await stateShot(page, `failure-${page.label}`).catch(() => {});
  err.message += `\n--- ${page.label}: page log ---\n${page.logs.slice(-15).join('\n')}`;
  return err;
}

test('connected is calm; a lost connection turns the console alarming with a tone and never says "Sin alertas"; calm again when the hub is back; Actividad shows what arrives', async (t) => {
  const T = await database.newTenant('cstates');
  const hub1 = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Carlos Pérez', role: 'GUARD' });
  const resident = await database.insertUser(T, { name: 'María López', role: 'RESIDENT', unitId: '502' });
  const page = await consolePage(hub1, tokenFor(hub1, { sub: guard, tenant: T, role: 'guard' }), 'offline', DESK);
  try {
    // Connected and listening: no banner, the calm empty text.
    assert.equal(await page.locator('#alarm').isVisible(), false, 'no alarm while connected');
    assert.match(await page.locator('#no-alerts').innerText(), /^Sin alertas/);
    await stateShot(page, 'connected');

    // The hub dies: after the short grace the whole console says alerts are not arriving.
    await hub1.kill('SIGKILL');
    const banner = page.locator('#alarm-offline');
    await banner.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await banner.innerText(), OFFLINE_TEXT);
    assert.match(await banner.innerText(), /Revise internet/);
    const text = await shown(page);
    assert.doesNotMatch(text, /Sin alertas/, 'no reassurance while alerts cannot arrive');
    assert.doesNotMatch(text, /\b1006\b/, 'no raw close code');
    assert.match(await page.locator('#no-alerts').innerText(), /NO pueden llegar/);
    assert.match(await page.title(), /SIN CONEXIÓN/);
    await poll(async () => (await status(page)).played.warning >= 2, { timeout: WAIT, what: 'the warning tone, repeated' });
    await stateShot(page, 'disconnected');

    // The hub comes back: calm again, and the tone stops with the banner.
    const hub2 = await restartHub(hub1);
    t.after(() => hub2.stop());
    await connected(page);
    await page.locator('#alarm').waitFor({ state: 'hidden', timeout: WAIT });
    assert.match(await page.locator('#no-alerts').innerText(), /^Sin alertas/);
    assert.equal((await status(page)).wakeLock, true, 'the screen is kept on where the browser allows it');

    // A panic: the alarm view and its sound; attending it shows in the side list, which is named for what it gets.
    await database.insertPanic(T, { userId: resident, unitId: '502', message: 'Ruidos en la puerta' });
    const card = alertFor(page, '502');
    await card.waitFor({ timeout: WAIT });
    await poll(async () => (await status(page)).played.panic >= 1, { timeout: WAIT, what: 'the panic alarm sound' });
    await stateShot(page, 'panic');
    await card.getByRole('button', { name: /Atender/ }).click();
    await page.locator('#activity li', { hasText: 'Carlos Pérez atendió el pánico de la unidad 502' }).waitFor({ timeout: WAIT });
    const side = await page.locator('.activity').innerText();
    assert.match(side, /^Comunicados y atenciones/);
    assert.doesNotMatch(side, /Sin visitantes ni pagos/, 'the list does not promise events a guard never gets');
    assert.deepEqual(page.logs.filter((l) => l.startsWith('pageerror')), [], 'no page errors');
  } catch (err) {
    throw await explain(err, page);
  }
});

test('tokenUrl: the console gets its token with the browser\'s cookie (no paste); when it cannot renew at expiry it alarms, and Renovar sesión resumes with the panic raised meanwhile', async (t) => {
  const T = await database.newTenant('ctoken');
  const hub = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Ana Gómez', role: 'GUARD' });
  const resident = await database.insertUser(T, { name: 'Jorge Ruiz', role: 'RESIDENT', unitId: '303' });
  const backend = await startTokenServer(hub, { sub: guard, tenant: T, role: 'guard' });
  t.after(() => backend.close());
  backend.ttlS = 20; // the session ends 20 s after it started unless renewed
  const page = await newPage(browser, 'token', DESK, backend.cookies);
  try {
    await page.goto(`${hub.url}/console/?tokenUrl=${encodeURIComponent(backend.url)}`);
    await connected(page);
    assert.equal(await page.locator('#signin').isVisible(), false, 'no paste needed');
    assert.ok(backend.served >= 1, 'the token came from tokenUrl');
    assert.equal(backend.withoutCookie, 0, 'every request to tokenUrl carried the cookie');
    assert.deepEqual([...backend.origins], [hub.url], 'a cross-origin request from the console');

    // The backend stops renewing: at expiry the console says the session is over, loudly.
    backend.mode = 'fail';
    const banner = page.locator('#alarm-expired');
    await banner.waitFor({ state: 'visible', timeout: 60_000 });
    const said = await banner.innerText();
    assert.match(said, EXPIRED_TEXT);
    assert.match(said, /no renovó la sesión \(respuesta 401\)/);
    assert.match(said, /Toque «Renovar sesión»/);
    assert.doesNotMatch(await shown(page), /Sin alertas/);
    assert.equal(await page.locator('#conn-text').innerText(), 'Sesión terminada');
    await poll(async () => (await status(page)).played.warning >= 1, { timeout: WAIT, what: 'the warning tone' });
    await stateShot(page, 'session-expired');

    // A panic while the session is over, then the backend renews again.
    await database.insertPanic(T, { userId: resident, unitId: '303', message: 'Se cayó en la escalera' });
    backend.mode = 'ok';
    backend.ttlS = 3600;
    await page.getByRole('button', { name: 'Renovar sesión' }).click();
    await connected(page);
    await page.locator('#alarm').waitFor({ state: 'hidden', timeout: WAIT });
    await alertFor(page, '303').waitFor({ timeout: WAIT }); // resumed where the session stopped
    assert.equal(backend.withoutCookie, 0, 'every request to tokenUrl carried the cookie');
    assert.deepEqual(page.logs.filter((l) => l.startsWith('pageerror')), [], 'no page errors');
  } catch (err) {
    throw await explain(err, page);
  }
});

test('tokenUrl refusing from the start: the console alarms and a pasted token still works', async (t) => {
  const T = await database.newTenant('cpaste');
  const hub = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Luis Mora', role: 'GUARD' });
  const backend = await startTokenServer(hub, { sub: guard, tenant: T, role: 'guard' });
  t.after(() => backend.close());
  backend.mode = 'fail';
  const page = await newPage(browser, 'paste', DESK, backend.cookies);
  try {
    await page.goto(`${hub.url}/console/?tokenUrl=${encodeURIComponent(backend.url)}`);
    const banner = page.locator('#alarm-expired');
    await banner.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await banner.innerText(), EXPIRED_TEXT);
    assert.doesNotMatch(await shown(page), /Sin alertas/);
    await page.getByText('Pegar un token nuevo').click(); // folded away while a tokenUrl is configured
    await page.locator('#paste-token').fill('esto no es un token');
    await page.getByRole('button', { name: 'Usar este token' }).click();
    await page.locator('#paste-error', { hasText: 'Eso no parece un token' }).waitFor({ timeout: WAIT });
    await page.locator('#paste-token').fill(tokenFor(hub, { sub: guard, tenant: T, role: 'guard' }));
    await page.getByRole('button', { name: 'Usar este token' }).click();
    await connected(page);
    await page.locator('#alarm').waitFor({ state: 'hidden', timeout: WAIT });
  } catch (err) {
    throw await explain(err, page);
  }
});

test('no tokenUrl: a pasted token that expires keeps the console on screen, alarming, with the paste field open; a new token resumes', async () => {
  const T = await database.newTenant('cexpiry');
  const hub = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Eva Ruiz', role: 'GUARD' });
  const resident = await database.insertUser(T, { name: 'Olga Paz', role: 'RESIDENT', unitId: '404' });
  // Long enough that signing in fits in it on a loaded machine (the console
  // treats a token already past its exp as expired and never connects).
  const ttlS = 40;
  const page = await consolePage(hub, tokenFor(hub, { sub: guard, tenant: T, role: 'guard' }, ttlS), 'expiry', DESK);
  try {
    const banner = page.locator('#alarm-expired');
    await banner.waitFor({ state: 'visible', timeout: ttlS * 1000 + WAIT });
    const said = await banner.innerText();
    assert.match(said, EXPIRED_TEXT);
    assert.match(said, /El token venció a las/);
    assert.match(said, /Pida a la administración un token nuevo y péguelo abajo/);
    assert.equal(await page.getByRole('button', { name: 'Renovar sesión' }).isVisible(), false, 'no Renovar sesión without a tokenUrl');
    assert.equal(await page.locator('#signin').isVisible(), false, 'the console stays, it does not drop to the sign-in form');
    await poll(async () => (await status(page)).played.warning >= 1, { timeout: WAIT, what: 'the warning tone' });
    await database.insertPanic(T, { userId: resident, unitId: '404' });
    await page.locator('#paste-token').fill(tokenFor(hub, { sub: guard, tenant: T, role: 'guard' }));
    await page.getByRole('button', { name: 'Usar este token' }).click();
    await connected(page);
    await alertFor(page, '404').waitFor({ timeout: WAIT }); // resumed where the session stopped
    await page.locator('#alarm').waitFor({ state: 'hidden', timeout: WAIT });
  } catch (err) {
    throw await explain(err, page);
  }
});

test('a token the hub refuses: the console stays, alarming, with the hub\'s reason, instead of dropping to the sign-in form', async () => {
  const T = await database.newTenant('crefused');
  const hub = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Iván Soto', role: 'GUARD' });
  const page = await newPage(browser, 'refused', DESK);
  try {
    await page.goto(`${hub.url}/console/`);
    await page.locator('#token').fill(mintToken('not-the-hub-secret', { sub: guard, tenant: T, role: 'guard', exp: nowS() + 3600 }));
    await page.getByRole('button', { name: 'Ingresar' }).click();
    const banner = page.locator('#alarm-expired');
    await banner.waitFor({ state: 'visible', timeout: WAIT });
    const said = await banner.innerText();
    assert.match(said, EXPIRED_TEXT);
    assert.match(said, /La central rechazó el token/);
    assert.equal(await page.locator('#signin').isVisible(), false);
    assert.doesNotMatch(await shown(page), /Sin alertas/);
  } catch (err) {
    throw await explain(err, page);
  }
});

test('sound blocked by the autoplay policy after a reload: an alarming banner until a tap, then the alarm sounds', async () => {
  const T = await database.newTenant('csound');
  const hub = await startConsoleHub();
  const guard = await database.insertUser(T, { name: 'Rosa Díaz', role: 'GUARD' });
  const resident = await database.insertUser(T, { name: 'Pedro Gil', role: 'RESIDENT', unitId: '707' });
  const page = await consolePage(hub, tokenFor(hub, { sub: guard, tenant: T, role: 'guard' }), 'sound', DESK, mutedBrowser);
  try {
    // A reload: the new document has had no gesture, so the browser keeps it mute.
    await page.reload();
    await connected(page);
    const banner = page.locator('#alarm-sound');
    await banner.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await banner.innerText(), SOUND_TEXT);
    await stateShot(page, 'sound-blocked');

    await banner.click();
    await banner.waitFor({ state: 'hidden', timeout: WAIT });
    assert.equal((await status(page)).sound, 'ok');
    await database.insertPanic(T, { userId: resident, unitId: '707' });
    await alertFor(page, '707').waitFor({ timeout: WAIT });
    await poll(async () => (await status(page)).played.panic >= 1, { timeout: WAIT, what: 'the panic alarm sound' });
  } catch (err) {
    throw await explain(err, page);
  }
});
