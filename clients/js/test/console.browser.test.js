// The guard console in real headless Chromium (Debian's, installed by
// scripts/browser-deps.sh) against a real hub: two guards see a panic at
// once, one attends it and the other sees who did, and a panic raised while
// the hub is down appears exactly once on both after it comes back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { useHubTests, startConsoleHub, restartHub, tokenFor, db, clientDir } from './lib/hub.js';

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

let browser;
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
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      // Pages fulfilled by Playwright count as non-local: let them reach the hub on 127.0.0.1.
      ...(FROM_DISK ? ['--disable-features=LocalNetworkAccessChecks'] : [])],
  });
  database = await db();
});

after(async () => {
  await browser?.close();
});

/** A console page in its own context (its own sessionStorage), signed in with token. */
async function consolePage(hub, token, label, viewport) {
  const context = await browser.newContext({ viewport, locale: 'es-CO' });
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
