// End-to-end: the web export of the app in Debian's Chromium against the real server binary.
//
//   npm run e2e        (PUMPPILOT_BIN: the server binary, default ../target/debug/pumppilot;
//                       CHROMIUM: the browser, default /usr/bin/chromium;
//                       E2E_SCREENSHOTS: where the PNGs go, default ./screenshots)
//
// Builds the web export, serves it, starts the server on a fresh SQLite file, checks that
// src/api/schema.d.ts matches the server's OpenAPI document, seeds a tenant over HTTP, runs a
// fake device that polls every second, and drives the app as a farmer and as a pump owner.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { drift } from '../scripts/schema.mjs';
import { startServer } from '../../test-support/server.mjs';
import { serveStatic } from './static.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shots = resolve(root, process.env.E2E_SCREENSHOTS || 'screenshots');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const started = Date.now();
const failures = [];
const cleanups = [];

function log(message) {
  console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const result = await fn();
    log(`ok   ${name} (${Date.now() - t0} ms)`);
    return result;
  } catch (err) {
    log(`FAIL ${name}: ${err.message}`);
    throw err;
  }
}

function run(cmd, args, env) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

/** A small JSON client for seeding and checking through the API. */
function apiClient(base) {
  return async function api(method, path, { token, body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const json = text ? JSON.parse(text) : null;
    if (!r.ok) {
      const err = new Error(`${method} ${path} → ${r.status} ${text}`);
      err.status = r.status;
      err.body = json;
      throw err;
    }
    return json;
  };
}

/** Waits for `condition` (sync or async) to hold, checking every 100 ms for up to `timeout` ms. */
async function until(condition, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once the page's fonts are loaded and two frames have been drawn since the call. */
function painted(page) {
  return page.evaluate(() =>
    document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))),
  );
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** "29 min 57 s" → 1797 (English text from the app). */
function seconds(text) {
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)\s*(h|min|s)\b/g)) total += Number(n) * (unit === 'h' ? 3600 : unit === 'min' ? 60 : 1);
  return total;
}

async function main() {
  if (!existsSync(browserPath)) throw new Error(`no browser at ${browserPath}: apt-get install -y chromium (or set CHROMIUM)`);
  mkdirSync(shots, { recursive: true });

  const dist = mkdtempSync(join(tmpdir(), 'pumppilot-web-'));
  cleanups.push(() => rmSync(dist, { recursive: true, force: true }));
  const [serverResult, webResult] = await Promise.allSettled([
    step('start the server', () => startServer({
      masterUsername: 'master',
      masterPassword: 'master-password-e2e',
      // No restart protection: load shedding resumes at once, as the steps expect.
      settings: { PUMPPILOT_MIN_OFF_MS: '0', PUMPPILOT_GRID_SETTLE_MS: '0', PUMPPILOT_MAX_STARTS_PER_HOUR: '0' },
    })),
    step('build the web export', async () => {
      await run('npx', ['expo', 'export', '--platform', 'web', '--output-dir', dist], {
        CI: '1',
        EXPO_NO_TELEMETRY: '1',
        EXPO_OFFLINE: '1',
      });
      return serveStatic(dist);
    }),
  ]);
  // Whatever started is stopped at the end, also when the other failed.
  if (serverResult.status === 'fulfilled') cleanups.push(() => serverResult.value.stop());
  if (webResult.status === 'fulfilled') cleanups.push(() => webResult.value.close());
  if (serverResult.status === 'rejected') throw serverResult.reason;
  if (webResult.status === 'rejected') throw webResult.reason;
  const server = serverResult.value;
  const web = webResult.value;
  log(`server ${server.url}, app ${web.url}`);

  // The drift test: the committed types must be what the running server documents.
  await step('src/api/schema.d.ts matches /api/openapi.json', async () => {
    const diff = await drift(server.url);
    if (diff.length) {
      failures.push(`schema drift (run \`npm run schema\`):\n${diff.join('\n')}`);
      throw new Error(`differs:\n${diff.slice(0, 6).join('\n')}`);
    }
  }).catch(() => {});

  const api = apiClient(server.url);
  const login = async (username, password) =>
    (await api('POST', '/api/mobile/login', { body: { username, password, deviceName: 'e2e seed' } })).accessToken;

  const seed = await step('seed a tenant through the API', async () => {
    const master = await login(server.masterUsername, server.masterPassword);
    await api('POST', '/api/master/admins', { token: master, body: { name: 'Rahim Uddin', username: 'rahim', password: 'rahim-password' } });
    const admin = await login('rahim', 'rahim-password');
    const karim = await api('POST', '/api/admin/users', { token: admin, body: { name: 'Karim Mia', username: '01711000001', password: 'karim-password' } });
    const salma = await api('POST', '/api/admin/users', { token: admin, body: { name: 'Salma Begum', username: '01711000002', password: 'salma-password' } });
    await api('POST', '/api/admin/recharge', { token: admin, body: { userId: karim.id, minutes: 30, cashTaka: 300, note: 'paid 300 taka' } });
    await api('POST', '/api/admin/recharge', { token: admin, body: { userId: salma.id, minutes: 10 } });
    const device = await api('POST', '/api/admin/devices', { token: admin, body: { name: 'Field pump' } });
    return { admin, karim, salma, deviceKey: device.deviceKey };
  });

  // A device at the pump: power on, ready, relay following the server's command.
  let relay = false;
  let loadShedding = false;
  let devicePolls = 0;
  const poll = async () => {
    try {
      const answer = await api('POST', '/api/esp32/poll', {
        token: seed.deviceKey,
        body: { loadShedding, ready: true, relay, fw: 'e2e-fake' },
      });
      relay = answer.motor === 'ON';
      devicePolls++;
    } catch (err) {
      log(`device poll failed: ${err.message}`);
    }
  };
  await poll();
  const poller = setInterval(poll, 1000);
  cleanups.push(() => clearInterval(poller));

  const profile = mkdtempSync(join(tmpdir(), 'pumppilot-chromium-'));
  cleanups.push(() => rmSync(profile, { recursive: true, force: true }));
  const context = await step('launch Chromium', () =>
    chromium.launchPersistentContext(profile, {
      executablePath: browserPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 360, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      locale: 'en-US',
    }),
  );
  cleanups.unshift(() => context.close());
  // The browser's share sheet: what the app hands to it is kept for the test to read. A frame
  // about to print (the print dialog opening) tells the app's window the language of its page.
  await context.addInitScript(() => {
    Object.defineProperty(navigator, 'share', {
      configurable: true,
      value: async (data) => {
        window.__shared = data;
      },
    });
    if (window.parent !== window) {
      window.addEventListener('beforeprint', () => window.parent.postMessage({ printed: document.documentElement.lang }, '*'));
    } else {
      window.__printed = [];
      window.addEventListener('message', (event) => {
        if (typeof event.data?.printed === 'string') window.__printed.push(event.data.printed);
      });
    }
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => msg.type() === 'error' && !/Failed to load resource/.test(msg.text()) && pageErrors.push(msg.text()));

  const byId = (id) => page.getByTestId(id, { exact: true });
  // Nothing of the screen shown sticks out past the 360 px phone's sides (cut off, or behind a
  // sideways scroll), below the fold too, and everything to tap is at least 48x48 px (a thumb in
  // the sun). Each screen pictured is checked first.
  const fits = async (name) => {
    await painted(page);
    const outside = await page.evaluate(() =>
      [...document.querySelectorAll('body *')]
        .map((el) => ({ el, box: el.getBoundingClientRect() }))
        .filter(({ box }) => box.width > 0 && box.height > 0 && (box.right > innerWidth + 1 || box.left < -1))
        .slice(0, 5)
        .map(({ el, box }) => `${el.tagName} ${el.getAttribute('data-testid') ?? ''} ${Math.round(box.left)}..${Math.round(box.right)} "${(el.textContent ?? '').slice(0, 40)}"`),
    );
    assert(outside.length === 0, `${name}: past the screen's sides: ${outside.join(' | ')}`);
    const small = await page.evaluate(() =>
      [...document.querySelectorAll('[role="button"], button, [role="tab"], [role="checkbox"], [role="radio"], a[href]')]
        .map((el) => ({ el, box: el.getBoundingClientRect() }))
        .filter(({ box }) => box.width > 0 && box.height > 0 && (box.width < 48 || box.height < 48))
        .map(({ el, box }) => `${el.getAttribute('role') ?? el.tagName} ${el.getAttribute('data-testid') ?? ''} ${Math.round(box.width)}x${Math.round(box.height)} "${(el.textContent ?? '').slice(0, 30)}"`),
    );
    assert(small.length === 0, `${name}: smaller than 48x48 px to tap: ${small.join(' | ')}`);
  };
  const shot = async (name) => {
    await fits(name);
    await page.screenshot({ path: join(shots, `${name}.png`) });
  };
  /** Each of these tabs opened, loaded (no spinner left) and checked to fit. */
  const tabsFit = async (ids, words) => {
    for (const id of ids) {
      await tab(id);
      await byId(id).waitFor();
      await until(async () => (await page.locator('[role="progressbar"]').count()) === 0, `${id} loaded`, 10_000);
      await fits(`${id} (${words})`);
    }
  };
  const text = async (id) => (await byId(id).innerText()).trim();
  const waitText = (id, pattern) => byId(id).filter({ hasText: pattern }).waitFor();
  const tab = (id) => byId(`tab-${id}`).click();

  async function signIn(username, password, { fillServer = true } = {}) {
    await byId('login').waitFor();
    if (fillServer) await byId('login-server').fill(server.url);
    await byId('login-username').fill(username);
    await byId('login-password').fill(password);
  }

  // What the app asks the server for, by path: the motor's state comes over the event stream,
  // and the status is polled only while the stream is not there.
  const asked = [];
  page.on('request', (request) => asked.push(new URL(request.url()).pathname));
  const statusPolls = () => asked.filter((path) => path === '/api/motor/status').length;

  // ---- A farmer -------------------------------------------------------------------------------
  await step('farmer signs in', async () => {
    await page.goto(web.url);
    await signIn('01711000001', 'karim-password');
    await shot('01-login');
    await byId('login-submit').click();
    await waitText('state-word', 'IDLE');
    await waitText('balance-value', '30 min');
    await until(async () => asked.includes('/api/events'), 'the app opens the event stream');
    await shot('02-home-idle');
  });

  await step('farmer starts a run and sees RUNNING with the time counting down', async () => {
    await byId('start').click();
    await waitText('state-word', 'RUNNING');
    const first = seconds(await text('state-detail'));
    assert(first > 0, `a remaining time is shown (${first})`);
    await until(async () => seconds(await text('state-detail')) < first, 'the remaining time counts down');
    await shot('03-home-running');
  });

  await step('load shedding: the run is ON HOLD with the reason in words, then resumes', async () => {
    // The power cut and its end reach the phone over the event stream, with no poll of the status.
    const begun = Date.now();
    const polled = statusPolls();
    loadShedding = true;
    await waitText('state-word', 'ON HOLD');
    await waitText('state-detail', 'Power cut (load shedding)');
    await page.getByText('Power cut', { exact: true }).waitFor();
    const held = seconds(await text('state-extra'));
    // Two more device polls in HOLD: more than a second of the server's time has passed.
    const polls = devicePolls;
    await until(() => devicePolls >= polls + 2, 'two more device polls');
    assert(seconds(await text('state-extra')) === held, 'the remaining time is frozen in HOLD');
    await shot('03b-home-hold');
    loadShedding = false;
    await waitText('state-word', 'RUNNING');
    // Longer than the polling interval (3 s): a poll would have been made.
    await page.waitForTimeout(Math.max(0, begun + 3500 - Date.now()));
    assert(statusPolls() === polled, `the state came over the stream, not by polling (${statusPolls() - polled} polls)`);
  });

  await step('a second farmer queues behind: the queue shows her as #1', async () => {
    const salma = await login('01711000002', 'salma-password');
    const entry = await api('POST', '/api/motor/start', { token: salma, body: {} });
    assert(entry.status === 'WAITING' && entry.position === 1, `Salma should wait as #1, got ${JSON.stringify(entry)}`);
    await tab('queue');
    await waitText('queue-waiting-1', 'Salma Begum');
    await waitText('queue-active', 'Karim Mia (you)');
    await shot('04-queue');
  });

  await step('the waiting farmer, in a second tab, sees WAITING #1 in blue', async () => {
    const other = await context.newPage();
    other.on('pageerror', (err) => pageErrors.push(err.message));
    await other.goto(web.url);
    await other.getByTestId('login').waitFor();
    // The server address is remembered; the session is not shared between tabs.
    assert((await other.getByTestId('login-server').inputValue()) === server.url, 'the server address should be remembered');
    await other.getByTestId('login-username').fill('01711000002');
    await other.getByTestId('login-password').fill('salma-password');
    await other.getByTestId('login-submit').click();
    await other.getByTestId('state-word').filter({ hasText: 'WAITING' }).waitFor();
    await other.getByTestId('state-detail').filter({ hasText: 'You are next' }).waitFor();
    await other.getByText('LEAVE THE QUEUE').waitFor();
    await other.screenshot({ path: join(shots, '04b-home-waiting.png') });
    await other.close();
  });

  await step('farmer stops; the balance has fallen', async () => {
    await tab('home');
    await byId('stop').click();
    await byId('home-success').waitFor();
    const balance = seconds(await text('balance-value'));
    assert(balance > 0 && balance < 30 * 60, `balance should be under 30 min after a run, got ${balance} s`);
    // Salma's turn now: the farmer sees someone else's run.
    await waitText('state-extra', 'Another farmer');
    await tab('wallet');
    await waitText('ledger-0', 'Pumping');
    const wallet = seconds(await text('wallet-balance-value'));
    assert(wallet < 30 * 60, `wallet balance should be under 30 min, got ${wallet} s`);
    await shot('05-wallet');
  });

  await step('the farmer opens their receipt from the ledger: the cash paid, to print', async () => {
    const line = page.getByTestId(/^ledger-\d+$/).filter({ hasText: 'Receipt no.' }).first();
    const id = await line.getAttribute('data-testid');
    await byId(`${id}-open-receipt`).click();
    await waitText(`${id}-receipt-card`, '300 taka');
    await waitText(`${id}-receipt-card`, 'Rahim Uddin');
    await byId(`${id}-receipt-card-print`).scrollIntoViewIfNeeded();
    await shot('05b-wallet-receipt');
    await byId(`${id}-open-receipt`).click();
    await until(async () => (await byId(`${id}-receipt-card`).count()) === 0, 'the receipt hidden again', 5_000);
  });

  await step('usage history lists the run', async () => {
    await tab('history');
    await page.getByText('Stopped by you').first().waitFor();
    await shot('06-history');
  });

  await step('farmer requests 15 minutes', async () => {
    await tab('request');
    await byId('request-minutes').fill('15');
    await byId('request-note').fill('Paid 150 taka cash');
    await byId('request-send').click();
    await byId('request-success').waitFor();
    await page.getByText('Waiting for approval').first().waitFor();
    await shot('07-request');
  });

  await step('Bangla renders, with Bangla digits, and is remembered; every farmer screen fits 360 px in it', async () => {
    await tab('home');
    await byId('language').click();
    await waitText('state-word', 'বন্ধ'); // Salma pumps; Karim is not
    await waitText('tab-home', 'হোম');
    const balance = await text('balance-value');
    assert(/[০-৯]/.test(balance) && !/[0-9]/.test(balance), `the balance should be in Bangla digits: ${balance}`);
    await shot('08-home-bangla');
    await tabsFit(['queue', 'wallet', 'request', 'history', 'alerts', 'home'], 'Bangla');
    await page.reload();
    await waitText('tab-home', 'হোম');
    await byId('language').click();
    await waitText('tab-home', 'Home');
  });

  await step('farmer signs out: the session is revoked on the server', async () => {
    const refreshToken = await page.evaluate(() => window.sessionStorage.getItem('pumppilot.refreshToken'));
    assert(refreshToken, 'the refresh token should be kept for this tab');
    await byId('sign-out').click();
    await byId('login').waitFor();
    assert((await byId('login-server').inputValue()) === server.url, 'the server address should be remembered');
    const gone = await api('POST', '/api/mobile/refresh', { body: { refreshToken } }).then(
      () => false,
      (err) => err.status === 401,
    );
    assert(gone, 'after sign-out the refresh token must not work');
    // The sign-in in Bangla fits too (the English one is pictured first thing).
    await byId('language').click();
    await waitText('language', 'English');
    await fits('the sign-in (Bangla)');
    await byId('language').click();
    await waitText('language', 'বাংলা');
  });

  // ---- The pump owner --------------------------------------------------------------------------
  await step('admin signs in and sees the pump', async () => {
    await signIn('rahim', 'rahim-password', { fillServer: false });
    await byId('login-submit').click();
    await waitText('state-word', 'RUNNING');
    await waitText('state-detail', 'Salma Begum');
    // One device status, derived by the server.
    await page.getByText('Pumping', { exact: true }).first().waitFor();
    assert((await byId('tab-home').count()) === 0, 'an admin has no farmer home tab');
    await shot('09-admin-pump');
  });

  await step('the pump screen left open: each read again, and what has not changed comes back with no body', async () => {
    // The screen reads its lists again with every state the server sends (at once on a change, and
    // every 15 s). Sent with the tag of the answer the app holds, an unchanged one is a 304: two
    // weeks of runs and receipts, here as on a busy pump, cost headers only. A power cut and its
    // end are two such states. (The line and the devices move during a run.)
    const seen = [];
    const record = async (response) => {
      const url = new URL(response.url());
      if (!url.pathname.startsWith('/api/') || url.pathname === '/api/events' || response.request().method() !== 'GET') return;
      const sizes = await response.request().sizes();
      seen.push({ path: url.pathname, url: url.pathname + url.search, status: response.status(), ...sizes });
    };
    page.on('response', record);
    const usage = () => seen.filter((r) => r.path === '/api/admin/usage').length;
    loadShedding = true;
    await waitText('state-word', 'ON HOLD');
    loadShedding = false;
    await waitText('state-word', 'RUNNING');
    await until(async () => usage() >= 2, 'the usage read again with each of the two states');
    page.off('response', record);
    assert(!seen.some((r) => r.path === '/api/motor/status'), `no status polled while the stream speaks: ${JSON.stringify(seen.map((r) => r.path))}`);
    for (const path of ['/api/admin/usage', '/api/admin/receipts']) {
      const reads = seen.filter((r) => r.path === path);
      assert(reads.length >= 2, `${path} read with each state (${reads.length})`);
      assert(reads.every((r) => r.status === 304 && r.responseBodySize === 0), `${path} unchanged, answered 304 without a body: ${JSON.stringify(reads.map((r) => r.status))}`);
    }
    // What the same reads would have cost without the tags: each 304's body read in full.
    let full = 0;
    for (const r of seen) full += r.responseHeadersSize + (r.status === 304 ? JSON.stringify(await api('GET', r.url, { token: seed.admin })).length : r.responseBodySize);
    const got = seen.reduce((n, r) => n + r.responseHeadersSize + r.responseBodySize, 0);
    log(`     ${seen.length} reads in ${usage()} states, ${seen.filter((r) => r.status === 304).length} of them 304: ${got} bytes received, ${full} without the tags`);
  });

  await step('admin takes a waiting farmer out of the line, with a reason and a second tap', async () => {
    const karim = await login('01711000001', 'karim-password');
    await api('POST', '/api/motor/start', { token: karim, body: { minutes: null } });
    await tab('admin-queue');
    await byId('remove-waiting').waitFor();
    await byId('remove-reason').fill('not at the field');
    await byId('remove-go').click();
    await waitText('remove-go', 'Tap again: Karim Mia leaves the line');
    assert((await api('GET', '/api/queue', { token: seed.admin })).waiting.length === 1, 'the first tap only asks');
    await shot('10b-admin-remove-waiting');
    // A second tap sooner than 0.7 s is a double tap, ignored: a person's second tap is later.
    await page.waitForTimeout(800);
    await byId('remove-go').click();
    await waitText('admin-queue-success', 'Karim Mia was taken out of the line. Their minutes are kept.');
    const queue = await api('GET', '/api/queue', { token: seed.admin });
    assert(queue.waiting.length === 0, `Karim left the line: ${JSON.stringify(queue.waiting)}`);
    const audit = await api('GET', '/api/admin/audit?action=queue.remove', { token: seed.admin });
    assert(audit.length === 1 && audit[0].detail === 'not at the field', `audited with the reason: ${JSON.stringify(audit)}`);
  });

  await step('admin stops the run from the queue', async () => {
    await tab('admin-queue');
    await waitText('queue-active', 'Salma Begum');
    await shot('10-admin-queue');
    await byId('admin-stop').click();
    await waitText('admin-stop', 'TAP AGAIN');
    await page.waitForTimeout(800);
    await byId('admin-stop').click();
    await byId('admin-queue-success').waitFor();
    await page.getByText('Nobody is using the motor.').waitFor();
  });

  await step('admin recharges the farmer', async () => {
    const before = (await api('GET', '/api/admin/users', { token: seed.admin })).find((u) => u.id === seed.karim.id).availableSeconds;
    await tab('users');
    await byId('user-01711000001-open').click();
    await byId('user-01711000001-minutes').fill('20');
    await byId('user-01711000001-cash').fill('50');
    await byId('user-01711000001-recharge').click();
    await byId('users-success').waitFor();
    const after = (await api('GET', '/api/admin/users', { token: seed.admin })).find((u) => u.id === seed.karim.id).availableSeconds;
    assert(after === before + 20 * 60, `recharge should add 20 min: ${before} → ${after}`);
    // The list reads the farmers again after the success message: it shows the new balance soon after.
    await until(async () => seconds(await text('user-01711000001-balance')) === after, 'the list shows the new balance', 5_000);
    await shot('11-admin-users');
  });

  await step('the recharge’s receipt: shown, in the farmer’s language, shared as text', async () => {
    const card = byId('user-01711000001-receipt');
    await card.getByText('50 taka').waitFor();
    await card.getByText('Karim Mia').waitFor();
    await byId('user-01711000001-receipt-language-bn').click();
    await card.getByText('৫০ টাকা').waitFor();
    await card.scrollIntoViewIfNeeded();
    await shot('11b-admin-receipt-bangla');
    await byId('user-01711000001-receipt-share').click();
    await waitText('user-01711000001-receipt-success', 'The receipt was shared.');
    const shared = await page.evaluate(() => window.__shared);
    const [receipt] = await api('GET', '/api/admin/receipts?from=2000-01-01', { token: seed.admin });
    const lines = shared.text.split('\n');
    assert(shared.title === 'রসিদ', `shared with its title: ${shared.title}`);
    assert(
      lines[0] === 'পাম্পপাইলট — রসিদ' && lines[1] === 'কৃষক: Karim Mia' && lines[3] === 'যোগ করা মিনিট: ২০\u00a0মিনিট' &&
        lines[4] === 'নগদ দেওয়া: ৫০ টাকা' && lines[5] === 'গ্রহণকারী: Rahim Uddin' && lines[6] === `রসিদ নং: ${receipt.number}`,
      `the receipt's text, in Bangla: ${shared.text}`,
    );
  });

  await step('the receipt printed: its own page, in Bangla, goes to the print dialog', async () => {
    await byId('user-01711000001-receipt-print').click();
    await until(async () => (await page.evaluate(() => window.__printed)).length === 1, 'the print dialog opened once', 5_000);
    assert((await page.evaluate(() => window.__printed))[0] === 'bn', 'the page printed is in Bangla');
    const printed = page.frameLocator('#pumppilot-print');
    const [receipt] = await api('GET', '/api/admin/receipts?from=2000-01-01', { token: seed.admin });
    await printed.getByText('পাম্পপাইলট — রসিদ').waitFor({ state: 'attached' });
    const rows = await printed.locator('tr').allInnerTexts();
    assert(
      rows.some((r) => r.replace(/\s+/g, ' ') === 'নগদ দেওয়া ৫০ টাকা') && rows.some((r) => r.replace(/\s+/g, ' ') === `রসিদ নং ${receipt.number}`),
      `the printed receipt's lines: ${rows.join(' | ')}`,
    );
    assert((await page.locator('#pumppilot-print').boundingBox())?.width === 0, 'the frame to print from is out of sight');
    // What the printer gets, at an 80 mm receipt roll's width.
    const html = await page.locator('#pumppilot-print').getAttribute('srcdoc');
    const paper = await context.newPage();
    await paper.setViewportSize({ width: 302, height: 400 });
    await paper.setContent(html);
    await paper.screenshot({ path: join(shots, '11c-admin-receipt-printed.png') });
    await paper.close();
  });

  await step('the farmer’s receipts of the last 90 days, read from the server, one opened', async () => {
    const [receipt] = await api('GET', '/api/admin/receipts?from=2000-01-01', { token: seed.admin });
    await byId('user-01711000001-receipts-show').click();
    const row = byId(`user-01711000001-receipts-${receipt.number}`);
    await row.waitFor();
    const words = (await row.innerText()).replace(/\s+/g, ' ');
    assert(words.endsWith('20 min · 50 taka'), `the receipt's row: ${words}`);
    await row.click();
    await byId('user-01711000001-receipt').getByText(receipt.number).waitFor();
    await row.scrollIntoViewIfNeeded();
    await shot('11d-admin-receipts');
  });

  await step('admin approves the minute request', async () => {
    await tab('requests');
    await page.getByText('Paid 150 taka cash').waitFor();
    await shot('12-admin-requests');
    await page.getByRole('button', { name: 'Approve' }).first().click();
    await byId('requests-success').waitFor();
    await page.getByText('No requests are waiting.').waitFor();
  });

  await step('admin rejects a request with a reason; the farmer is told it', async () => {
    const farmer = await login('01711000001', 'karim-password');
    const asked = await api('POST', '/api/minute-requests', { token: farmer, body: { minutes: 600, note: 'For the whole field' } });
    await tab('pump');
    await tab('requests');
    await page.getByText('For the whole field').waitFor();
    await byId(`reject-${asked.id}`).click();
    await byId(`reject-${asked.id}-reason-TOO_MANY`).click();
    await shot('12b-admin-reject-why');
    await byId(`reject-${asked.id}-send`).click();
    await waitText('requests-success', 'Reason: Ask for fewer minutes.');
    const [latest] = await api('GET', '/api/minute-requests', { token: farmer });
    assert(
      latest.id === asked.id && latest.status === 'REJECTED' && latest.rejectReason === 'TOO_MANY',
      `the farmer's request, rejected with its reason: ${JSON.stringify(latest)}`,
    );
  });

  await step('admin screens in Bangla, each fitting 360 px', async () => {
    await tab('pump');
    await byId('language').click();
    await waitText('state-word', 'বন্ধ');
    await page.getByText('প্রস্তুত', { exact: true }).waitFor(); // the device switched off after the stop: ready
    await shot('13-admin-pump-bangla');
    await tabsFit(['admin-queue', 'requests', 'alerts', 'users'], 'Bangla');
    await byId('user-01711000001-open').click();
    await byId('user-01711000001-receipts-show').click();
    await byId('user-01711000001-receipts').waitFor();
    await fits('a farmer opened, with the receipts (Bangla)');
    await tab('pump');
    await byId('language').click();
  });

  // ---- The master ------------------------------------------------------------------------------
  await step('the master sees every pump’s figures together, as the server counts them', async () => {
    const master = await login(server.masterUsername, server.masterPassword);
    const expected = await api('GET', '/api/master/totals', { token: master });
    assert(expected.owners === 1 && expected.farmers === 2 && expected.cashTaka >= 50, `the server's totals: ${JSON.stringify(expected)}`);
    await byId('sign-out').click();
    await signIn(server.masterUsername, server.masterPassword, { fillServer: false });
    await byId('login-submit').click();
    const totals = byId('totals');
    await totals.getByText('All pumps').waitFor();
    for (const line of [
      '1 pump owner',
      `${expected.farmers} farmers`,
      `${expected.running} pumping now`,
      `${expected.onHold} on hold`,
      `Cash taken in the last 30 days: ${expected.cashTaka} taka`,
    ]) {
      await totals.getByText(line, { exact: true }).waitFor();
    }
    await byId('admin-rahim').waitFor();
    await shot('13b-master-totals');
    // The owner again, whose pump screen keeps asking the server (the next step takes it away).
    await byId('sign-out').click();
    await signIn('rahim', 'rahim-password', { fillServer: false });
    await byId('login-submit').click();
    await byId('state-word').waitFor();
  });

  await step('the offline banner shows when the server goes away', async () => {
    await server.stop();
    await byId('offline-banner').waitFor({ timeout: 20_000 });
    await shot('14-offline');
  });

  if (pageErrors.length) failures.push(`errors in the page:\n${pageErrors.join('\n')}`);
  log(`device polled ${devicePolls} times`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  failures.push(err.stack || String(err));
} finally {
  for (const clean of cleanups) {
    try {
      await clean();
    } catch {
      // keep cleaning
    }
  }
}
if (failures.length) {
  console.error(`\ne2e failed:\n${failures.join('\n\n')}`);
  exitCode = 1;
}
log(exitCode ? 'FAILED' : 'passed');
process.exit(exitCode);
