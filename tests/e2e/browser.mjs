// Browser helpers for the e2e tests: Debian's chromium driven by
// playwright-core (never a downloaded browser), one isolated context per
// person, logging in through the real login page, screenshots of the main
// screens into docs/screenshots/, and a TCP proxy that can cut a phone's
// network for a few seconds.
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, startOtjd } from '../integration/harness.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const PHONE = { width: 360, height: 640 };
export const DESKTOP = { width: 1280, height: 800 };
export const SHOTS = process.env.OTJ_SCREENSHOTS_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // launch() gives every run a fresh, temporary user-data-dir
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// A person in their own browser context. Collects page errors so a test can
// assert that the pages ran clean.
export async function person(browser, base, login, { viewport = PHONE, reducedMotion = 'reduce' } = {}) {
  const context = await browser.newContext({ baseURL: base, viewport, reducedMotion, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${login}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to .* failed/.test(m.text())) errors.push(`${login}: ${m.text()}`);
  });
  return { login, context, page, errors, base };
}

// The world of one browser test file: a redis-server, an otjd with the demo
// organisation on it and one chromium, started before the tests and stopped
// after them. w.as(login, viewport) opens a person (closed at the end);
// w.srv is the otjd. With checkErrors, the file fails when a page of anyone
// it opened had a script error.
export function browserWorld({ viewport: byDefault = PHONE, checkErrors = false } = {}) {
  const w = { redis: null, srv: null, browser: null, people: [] };
  before(async () => {
    w.redis = await startRedis();
    w.srv = await startOtjd({ redis: w.redis.addr });
    w.browser = await launch();
  });
  after(async () => {
    for (const p of w.people) await p.context.close().catch(() => {});
    if (w.browser) await w.browser.close();
    if (w.srv) { await w.srv.stop(); w.srv.cleanup(); }
    if (w.redis) await w.redis.stop();
    if (checkErrors) assert.deepEqual(w.people.flatMap((p) => p.errors), [], 'no script errors on any page');
  });
  w.as = async (login, viewport = byDefault) => {
    const p = await person(w.browser, w.srv.base, login, { viewport });
    w.people.push(p);
    return p;
  };
  return w;
}

// Logs in through the login page, starting at `route` (a hash route such as
// /#/join/123456): the app sends the person to the login page and back.
export async function logIn(p, route = '/#/') {
  await p.page.goto(p.base + route);
  await p.page.getByLabel('Login', { exact: true }).fill(p.login);
  await p.page.getByLabel('Password').fill('otj-demo');
  await p.page.getByRole('button', { name: 'Log in' }).click();
  await p.page.locator('#conn[data-status="online"]').waitFor({ timeout: 15000 });
}

// Both log in, rita starts Hand hygiene from her dashboard with `learner`,
// who joins with the code, and rita's roster shows them present. Resolves
// with the join code (others may join with it too).
export async function startHandHygiene(rita, learner, learnerName, T = 20000) {
  await logIn(learner, '/#/learn');
  await logIn(rita, '/#/dashboard');
  await rita.page.getByRole('button', { name: `Start Hand hygiene with ${learnerName}` }).click({ timeout: T });
  const code = (await rita.page.locator('#join-code').textContent({ timeout: T })).trim();
  await learner.page.goto(`${learner.base}/#/join/${code}`);
  await learner.page.locator('#task-text', { hasText: 'How long should you rub your hands with soap?' }).waitFor({ timeout: T });
  await rita.page.locator('.roster .presence.on').filter({ hasText: learnerName }).waitFor({ timeout: T });
  return code;
}

// Saves docs/screenshots/<name>-phone.png and -desktop.png of the page as it
// is now (the viewport is switched for the second one and switched back).
export async function shoot(page, name, { both = true } = {}) {
  mkdirSync(SHOTS, { recursive: true });
  const vp = page.viewportSize();
  const kind = vp.width <= 480 ? 'phone' : 'desktop';
  await settle(page);
  await page.screenshot({ path: path.join(SHOTS, `${name}-${kind}.png`), fullPage: false });
  if (!both) return;
  const other = kind === 'phone' ? DESKTOP : PHONE;
  await page.setViewportSize(other);
  await settle(page);
  await page.screenshot({ path: path.join(SHOTS, `${name}-${kind === 'phone' ? 'desktop' : 'phone'}.png`), fullPage: false });
  await page.setViewportSize(vp);
  await settle(page);
}

async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForTimeout(150);
}

// A TCP proxy in front of otjd for one phone. mode 'pass' forwards; 'down'
// cuts every connection and refuses new ones (the network is gone);
// 'blackhole' keeps the sockets but forwards nothing (packets lost).
// latency(ms) delays everything by ms each way (a phone network).
export async function netProxy(targetPort) {
  const pairs = new Set();
  let mode = 'pass';
  let delay = 0; // ms each way, as a phone network's latency
  const server = net.createServer((client) => {
    if (mode === 'down') { client.destroy(); return; }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const forward = (from, to) => from.on('data', (d) => {
      if (mode !== 'pass') return;
      if (!delay) to.write(d);
      else setTimeout(() => { if (mode === 'pass' && !to.destroyed) to.write(d); }, delay);
    });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    // what is still on its way arrives before the close does
    const closed = () => (delay ? setTimeout(end, delay + 5) : end());
    client.on('close', closed);
    upstream.on('close', closed);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    base: `http://127.0.0.1:${server.address().port}`,
    latency(ms) { delay = ms; },
    set(m) {
      mode = m;
      if (m === 'down') for (const p of [...pairs]) { p.client.destroy(); p.upstream.destroy(); }
    },
    close() {
      for (const p of [...pairs]) { p.client.destroy(); p.upstream.destroy(); }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
