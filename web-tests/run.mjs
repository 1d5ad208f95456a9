// The web dashboard, end to end: the real server binary on a free port with a fresh SQLite file,
// a simulated device polling it, and Debian's Chromium driving the pages as the master, a pump
// owner and two farmers.
//
//   npm ci && npm test
//
// PUMPPILOT_BIN  the server binary (default ../target/debug/pumppilot; see ../test-support/server.mjs)
// SCREENSHOTS    where the screenshots go (default ../docs/screenshots)
// CHROMIUM       the browser (default /usr/bin/chromium)
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startServer } from '../test-support/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const shots = resolve(here, process.env.SCREENSHOTS || '../docs/screenshots');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const MASTER = { username: 'master', password: 'master-password-web' };
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1366, height: 768 };

// The firmware signing key (a fixed test seed): the server gets its public half, as
// `pumppilot firmware keygen` would have printed it, and the test signs as `pumppilot firmware sign`.
const FIRMWARE_KEY = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 7)]),
  format: 'der',
  type: 'pkcs8',
});
const FIRMWARE_PUBLIC = createPublicKey(FIRMWARE_KEY).export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');

/** The signature of an image as `version` (Ed25519 over "PP-FW-1\n" version "\n" size "\n" SHA-256). */
function signImage(version, image) {
  const digest = createHash('sha256').update(image).digest();
  const message = Buffer.concat([Buffer.from(`PP-FW-1\n${version}\n${image.length}\n`), digest]);
  return sign(null, message, FIRMWARE_KEY).toString('hex');
}

const started = Date.now();
const cleanups = [];
const pageErrors = [];

function log(message) {
  console.log(`[web ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}`);
}

let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    const result = await fn();
    passed++;
    log(`ok   ${name} (${Date.now() - t0} ms)`);
    return result;
  } catch (err) {
    log(`FAIL ${name}: ${err.message}`);
    throw err;
  }
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

/** What does not fit a 360 px screen on the page as it is now: sideways scrolling, and every
 *  button, header or tab link and checkbox label under 48×48 px or past the edge. */
function layoutProblems(page) {
  return page.evaluate(() => {
    const out = [];
    const width = document.documentElement.scrollWidth;
    if (width > 360) {
      // Name the innermost elements that stick out, so the fix is easy to find.
      const over = [...document.querySelectorAll('body *')].filter(
        (n) => n.getBoundingClientRect().right > 360.5 && ![...n.children].some((c) => c.getBoundingClientRect().right > 360.5),
      );
      const names = over.slice(0, 3).map((n) => `${n.tagName.toLowerCase()}.${n.className} "${n.textContent.trim().slice(0, 20)}"`);
      out.push(`scrolls sideways: ${width} px (${names.join(', ')})`);
    }
    // Every button, every link in the header or the tabs, every checkbox's label.
    const targets = document.querySelectorAll('button, .top a, .tabs a, label.check, input[type=submit]');
    for (const node of targets) {
      const box = node.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue; // hidden
      if (box.width < 48 || box.height < 48) {
        out.push(`${node.tagName.toLowerCase()} "${node.textContent.trim().slice(0, 30)}" is ${Math.round(box.width)}×${Math.round(box.height)}`);
      }
      if (box.right > 360.5) out.push(`${node.tagName.toLowerCase()} "${node.textContent.trim().slice(0, 30)}" ends at ${Math.round(box.right)} px`);
    }
    return out;
  });
}

/**
 * A stand-in for Expo's push API on a free port: records every request exactly (method, path,
 * headers, body) and answers each push with an `ok` ticket, each receipts request with none yet.
 */
async function startExpoStandIn() {
  const requests = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method, path: req.url, headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      if (req.url.endsWith('/getReceipts')) res.end('{"data":{}}');
      else res.end(JSON.stringify({ data: JSON.parse(body).map((_, n) => ({ status: 'ok', id: `ticket-${requests.length}-${n}` })) }));
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  cleanups.unshift(() => new Promise((ok) => server.close(ok)));
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * An Android-style notification card drawn from one push message exactly as Expo received it
 * (title, body, the app's name), with the request body itself printed under it.
 */
function pushCard(request) {
  const [message] = JSON.parse(request.body);
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<style>
  body { margin: 0; font-family: Roboto, 'Noto Sans', 'Lohit Bengali', sans-serif; background: linear-gradient(#1d3b2a, #3d6b4f); min-height: 100vh; color: #111; }
  .status { color: #fff; display: flex; justify-content: space-between; padding: 10px 18px; font-size: 14px; }
  .shade { padding: 8px 10px; }
  .card { background: #fff; border-radius: 22px; padding: 14px 16px 16px; box-shadow: 0 2px 8px rgba(0,0,0,.25); }
  .head { display: flex; align-items: center; gap: 8px; font-size: 12.5px; color: #444; }
  .icon { width: 20px; height: 20px; border-radius: 50%; background: #0b3d91; color: #fff; font-weight: 700; font-size: 11px; display: grid; place-items: center; }
  .title { font-weight: 600; font-size: 15.5px; margin-top: 8px; }
  .body { font-size: 14.5px; line-height: 1.35; margin-top: 2px; color: #333; }
  .caption { color: #fff; font-size: 12.5px; margin: 16px 6px 6px; }
  pre { background: rgba(0,0,0,.45); color: #e8f5e9; font-size: 11px; line-height: 1.35; border-radius: 12px; padding: 10px; margin: 0 4px; white-space: pre-wrap; word-break: break-all; }
</style></head><body>
<div class="status"><span>9:41</span><span>▾ ▴ ▮</span></div>
<div class="shade">
  <div class="card" id="push-card">
    <div class="head"><span class="icon">P</span><span>PumpPilot</span><span>· now</span></div>
    <div class="title" id="push-title">${escapeHtml(message.title)}</div>
    <div class="body" id="push-body">${escapeHtml(message.body)}</div>
  </div>
  <p class="caption">A rendering of the exact request the stand-in Expo push receiver got in the browser test:<br>
  <code style="white-space: nowrap">${escapeHtml(request.method)} ${escapeHtml(request.path)}</code></p>
  <pre id="push-request">${escapeHtml(JSON.stringify(JSON.parse(request.body), null, 1))}</pre>
</div></body></html>`;
}

/** The server with the test's master and a short poll interval and lease. */
async function startTestServer(expo) {
  const server = await startServer({
    masterUsername: MASTER.username,
    masterPassword: MASTER.password,
    // No restart protection: the test walks load shedding and handovers without minute-long waits.
    settings: {
      PUMPPILOT_POLL_INTERVAL_MS: '1000',
      PUMPPILOT_DEVICE_LEASE_MS: '3000',
      PUMPPILOT_MIN_OFF_MS: '0',
      PUMPPILOT_GRID_SETTLE_MS: '0',
      PUMPPILOT_MAX_STARTS_PER_HOUR: '0',
      PUMPPILOT_FIRMWARE_PUBLIC_KEY: FIRMWARE_PUBLIC,
      // Push through the stand-in Expo receiver.
      PUMPPILOT_EXPO_PUSH: 'on',
      PUMPPILOT_EXPO_PUSH_URL: `${expo.url}/--/api/v2/push/send`,
    },
  });
  cleanups.unshift(server.stop);
  return server;
}

/** A device at the pump: power and readiness set by the test, the relay following the server. */
function startDevice(url, key) {
  const device = { loadShedding: false, ready: true, relay: false, polls: 0, failures: 0, fw: 'web-test/1.0.0', update: null };
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const r = await fetch(`${url}/api/esp32/poll`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ loadShedding: device.loadShedding, ready: device.ready, relay: device.relay, fw: device.fw }),
        });
        const answer = await r.json();
        if (r.ok) {
          device.relay = answer.motor === 'ON';
          device.update = answer.update || null;
          device.polls++;
        } else device.failures++;
      } catch {
        device.failures++;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  loop();
  cleanups.unshift(() => (stopped = true));
  return device;
}

async function main() {
  if (!existsSync(browserPath)) throw new Error(`no browser at ${browserPath}: apt-get install -y chromium (or set CHROMIUM)`);
  mkdirSync(shots, { recursive: true });
  const expo = await startExpoStandIn();
  const server = await step('start the server', () => startTestServer(expo));
  log(`server ${server.url}`);

  const browser = await step('launch Chromium', () =>
    chromium.launch({
      executablePath: browserPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
  );
  cleanups.unshift(() => browser.close());

  /** A signed-out phone: its own cookies, its own page. */
  async function phone(name) {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-US', timezoneId: 'Asia/Dhaka' });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/Failed to load resource|ERR_FAILED|EventSource/.test(msg.text())) pageErrors.push(`${name}: ${msg.text()}`);
    });
    page.on('dialog', (dialog) => dialog.accept());
    return page;
  }

  async function signIn(page, username, password) {
    await page.goto(`${server.url}/`);
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  }

  const word = (page) => page.locator('#state-word');
  const waitWord = (page, pattern, timeout) => page.locator('#state-word', { hasText: pattern }).waitFor({ timeout });

  /** Phone and desktop screenshots of a page, as it is now. */
  async function screenshots(page, name) {
    await painted(page);
    await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: false });
    await page.setViewportSize(DESKTOP);
    await painted(page);
    await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: false });
    await page.setViewportSize(PHONE);
  }

  // ---- The master creates a pump owner. ----
  const master = await phone('master');
  await step('master signs in and adds a pump owner', async () => {
    await signIn(master, MASTER.username, MASTER.password);
    assert(new URL(master.url()).pathname === '/master', `master lands on ${master.url()}`);
    await master.locator('#o-name').fill('Rahim Uddin');
    await master.locator('#o-username').fill('rahim');
    await master.locator('#o-password').fill('rahim-password');
    await master.getByRole('button', { name: 'Create' }).click();
    await master.getByText('Rahim Uddin was added.').waitFor();
    await master.locator('#owners tr[data-owner]').first().waitFor();
  });

  // ---- The owner adds two farmers, recharges them, registers the device. ----
  const admin = await phone('admin');
  const deviceKey = await step('owner adds two farmers, recharges them and registers the device', async () => {
    await signIn(admin, 'rahim', 'rahim-password');
    assert(new URL(admin.url()).pathname === '/admin', `owner lands on ${admin.url()}`);
    // A new pump starts with what is left to set up, and no device status it cannot know.
    await admin.locator('#setup li.todo', { hasText: 'Register the device at the pump' }).waitFor();
    await admin.locator('#device-status', { hasText: 'No device at the pump yet' }).waitFor();
    await screenshots(admin, 'admin-setup');
    // The owner's price and limit per request, before any recharge.
    await admin.locator('#t-max').fill('120');
    await admin.locator('#t-price').fill('120');
    await admin.getByRole('button', { name: 'Save price and limits' }).click();
    await admin.getByText('Saved: at most 120 min in one request; 120 taka an hour.').waitFor();
    // A bad limit is refused in words, and what was typed stays.
    await admin.locator('#t-max').fill('abc');
    await admin.getByRole('button', { name: 'Save price and limits' }).click();
    await admin.getByText('Most minutes: a whole number from 1 to 10080.').waitFor();
    assert((await admin.locator('#t-max').inputValue()) === 'abc', 'the typed value is kept');
    for (const [name, username] of [['Karim Mia', '01711000001'], ['Salma Begum', '01711000002']]) {
      await admin.goto(`${server.url}/admin/farmers`);
      await admin.locator('#f-name').fill(name);
      await admin.locator('#f-username').fill(username);
      await admin.locator('#f-password').fill(`${username}-pw`);
      await admin.getByRole('button', { name: 'Create' }).click();
      await admin.getByText(`${name} was added.`).waitFor();
      await admin.getByRole('link', { name }).first().click();
      await admin.locator('#r-minutes').fill('30');
      await admin.locator('#r-cash-help', { hasText: 'at 120 taka an hour' }).waitFor();
      await admin.getByRole('button', { name: 'Recharge' }).click();
      await admin.getByText(`${name} now has 30 min.`).waitFor();
      // The recharge goes on to its receipt: at the price, 30 minutes are 60 taka.
      await admin.locator('#receipt', { hasText: name }).waitFor();
      await admin.locator('#receipt dd', { hasText: '60 taka' }).waitFor();
    }
    await screenshots(admin, 'admin-receipt');
    // The receipt in the farmer's language, with Bangla digits.
    await admin.getByRole('link', { name: 'বাংলায় দেখুন' }).click();
    await admin.locator('#receipt dd', { hasText: '৬০ টাকা' }).waitFor();
    await admin.locator('#receipt h1', { hasText: 'রসিদ' }).waitFor();
    await admin.screenshot({ path: join(shots, 'admin-receipt-bangla-phone.png') });
    // Saved as an image where the browser cannot share files: a PNG of the receipt, in Bangla.
    const [download] = await Promise.all([admin.waitForEvent('download'), admin.locator('#share-receipt', { hasText: 'ছবি হিসেবে' }).click()]);
    assert(/^receipt-[0-9a-f]{8}\.png$/.test(download.suggestedFilename()), `named after the receipt: ${download.suggestedFilename()}`);
    const image = join(shots, 'admin-receipt-image-bangla.png');
    await download.saveAs(image);
    const png = readFileSync(image);
    assert(png.subarray(1, 4).toString() === 'PNG' && png.readUInt32BE(16) === 720, `a PNG 720 px wide (360 at 2×): ${png.readUInt32BE(16)}`);
    await admin.locator('#receipt-image-status', { hasText: 'রসিদের ছবি রাখা হয়েছে' }).waitFor();
    // Shared through the Web Share API where the browser can share files (a phone's browser).
    const receiptUrl = admin.url();
    const sharing = await admin.context().newPage();
    await sharing.addInitScript(() => {
      navigator.canShare = (data) => Boolean(data && data.files && data.files.length);
      navigator.share = async (data) => {
        const file = data.files[0];
        const bytes = new Uint8Array(await file.arrayBuffer());
        window.__shared = { title: data.title, name: file.name, type: file.type, size: file.size, magic: String.fromCharCode(...bytes.subarray(1, 4)) };
      };
    });
    await sharing.goto(receiptUrl);
    await sharing.locator('#share-receipt').click();
    await sharing.locator('#receipt-image-status', { hasText: 'রসিদের ছবি পাঠানো হয়েছে।' }).waitFor();
    const shared = await sharing.evaluate(() => window.__shared);
    assert(shared.type === 'image/png' && shared.magic === 'PNG' && shared.title === 'রসিদ' && shared.name === download.suggestedFilename() && shared.size > 1000, `the PNG file shared: ${JSON.stringify(shared)}`);
    await sharing.close();
    await admin.goto(`${server.url}/admin`);
    await admin.locator('#device-name').fill('Field pump');
    await admin.getByRole('button', { name: 'Register' }).click();
    const key = await admin.locator('#device-key').inputValue();
    assert(key.startsWith('pp_dev_'), `the key is shown: ${key}`);
    await admin.screenshot({ path: join(shots, 'admin-device-key-phone.png') });
    await admin.getByRole('link', { name: 'Done' }).click();
    return key;
  });
  const device = startDevice(server.url, deviceKey);

  // The owner's page gets no event stream: it must stay live by polling.
  await admin.route('**/api/events', (route) => route.abort());
  await step('owner sees the device connected (by polling; the stream is blocked)', async () => {
    await admin.goto(`${server.url}/admin`);
    await admin.locator('#device-status', { hasText: 'Ready' }).waitFor();
    await admin.locator('#live-status', { hasText: 'Live updates are off' }).waitFor();
  });

  // ---- Farmer A starts; farmer B joins the queue. ----
  const a = await phone('farmer A');
  const b = await phone('farmer B');
  const PUSH_TOKENS = { a: 'ExponentPushToken[web-test-karim]', b: 'ExponentPushToken[web-test-salma]' };
  await step('both farmers’ phones register for push (as the app does)', async () => {
    for (const [who, username] of [['a', '01711000001'], ['b', '01711000002']]) {
      const login = await fetch(`${server.url}/api/mobile/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, password: `${username}-pw`, deviceName: `farmer ${who}'s phone` }),
      });
      const { accessToken } = await login.json();
      const registered = await fetch(`${server.url}/api/alerts/push-tokens/${encodeURIComponent(PUSH_TOKENS[who])}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${accessToken}` },
      });
      assert(registered.ok, `farmer ${who}'s push token is registered: ${registered.status}`);
    }
  });

  await step('farmer A starts and sees RUNNING, the time counting down', async () => {
    await signIn(a, '01711000001', '01711000001-pw');
    assert(new URL(a.url()).pathname === '/user', `farmer lands on ${a.url()}`);
    await waitWord(a, 'IDLE');
    await a.locator('#balance-value', { hasText: '30 min' }).waitFor();
    await a.locator('#motor-button', { hasText: 'START' }).click();
    await waitWord(a, 'RUNNING');
    await a.locator('#motor-button', { hasText: 'STOP' }).waitFor();
    // The clock starts when the device confirms the relay; then it counts down every second.
    const first = await a.locator('#state-detail').innerText();
    assert(/^(\d+ min )?\d+ s left$|^\d+ min left$/.test(first), `the remaining time, with units: ${first}`);
    await a.waitForFunction((shown) => document.getElementById('state-detail').textContent !== shown, first, { timeout: 5000 });
    const later = await a.locator('#state-detail').innerText();
    const seconds = (text) => {
      const m = /(?:(\d+) min)?\s*(?:(\d+) s)?/.exec(text);
      return Number(m[1] || 0) * 60 + Number(m[2] || 0);
    };
    assert(seconds(later) < seconds(first), `the remaining time counts down: ${first} → ${later}`);
    assert(a.url().endsWith('/user'), 'no page load for Start');
  });

  await step('farmer B (another browser) joins and sees WAITING #1', async () => {
    await signIn(b, '01711000002', '01711000002-pw');
    // Karim pumps, but Salma is not: her own state leads, in grey, and the motor comes second.
    await waitWord(b, 'IDLE');
    await b.locator('#state.state-idle').waitFor();
    await b.locator('#state-extra', { hasText: 'Another farmer is pumping' }).waitFor();
    await b.locator('#motor-button', { hasText: 'JOIN THE QUEUE' }).click();
    await waitWord(b, 'WAITING #1');
    await b.locator('#state-detail', { hasText: 'You are next' }).waitFor();
    await b.locator('#state-extra', { hasText: 'Estimated wait' }).waitFor();
    await a.locator('#queue-body li', { hasText: 'Salma Begum' }).waitFor();
  });

  await step('farmer B leaves the queue: asked first, then told "you left"; and joins again', async () => {
    const asked = [];
    const seen = (dialog) => asked.push(dialog.message());
    b.on('dialog', seen);
    await b.locator('#motor-button', { hasText: 'LEAVE THE QUEUE' }).click();
    await b.locator('#action-done', { hasText: 'You left the queue.' }).waitFor();
    await waitWord(b, 'IDLE');
    b.off('dialog', seen);
    assert(asked.length === 1 && /Leave the queue\?/.test(asked[0]), `a question before leaving: ${asked}`);
    await b.locator('#motor-button', { hasText: 'JOIN THE QUEUE' }).click();
    await waitWord(b, 'WAITING #1');
  });

  await step('owner sees Karim running and Salma waiting, without a reload', async () => {
    await waitWord(admin, 'RUNNING');
    await admin.locator('#state-detail', { hasText: 'Karim Mia' }).waitFor();
    await admin.locator('#queue-body li', { hasText: 'Salma Begum' }).waitFor();
    await admin.locator('#device-status', { hasText: 'Pumping' }).waitFor();
  });

  await step('owner moves a waiting farmer up the line, with a reason; every page follows', async () => {
    // A third farmer, with minutes from a correction (no cash, so no receipt), joins the line.
    await admin.evaluate(async () => {
      const post = async (path, body) => {
        const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
        return r.json();
      };
      const user = await post('/api/admin/users', { name: 'Jamal Hossain', username: '01711000003', password: '01711000003-pw' });
      await post('/api/admin/corrections', { userId: user.id, minutes: 10, note: 'test minutes' });
    });
    const c = await phone('farmer C');
    await signIn(c, '01711000003', '01711000003-pw');
    await c.locator('#motor-button', { hasText: 'JOIN THE QUEUE' }).click();
    await waitWord(c, 'WAITING #2');
    await admin.goto(`${server.url}/admin`);
    await admin.locator('#mv-user').selectOption({ label: '#2 Jamal Hossain' });
    await admin.locator('#mv-position').fill('1');
    await admin.locator('#mv-reason').fill('sick child at home');
    await admin.locator('#move-waiting').scrollIntoViewIfNeeded();
    await admin.screenshot({ path: join(shots, 'admin-move-waiting-phone.png') });
    const width = await admin.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 360, `the page with the move form fits 360 px: ${width}`);
    await admin.getByRole('button', { name: 'Move', exact: true }).click();
    await admin.getByText('Jamal Hossain is now #1 in the queue.').waitFor();
    await waitWord(c, 'WAITING #1');
    await waitWord(b, 'WAITING #2');
    // Jamal leaves again; Salma is next once more.
    await c.locator('#motor-button', { hasText: 'LEAVE THE QUEUE' }).click();
    await waitWord(c, 'IDLE');
    await waitWord(b, 'WAITING #1');
    await c.context().close();
    await admin.goto(`${server.url}/admin/log?kind=queue.move`);
    await admin.locator('#audit td', { hasText: '#2 → #1 sick child at home' }).waitFor();
    await admin.goto(`${server.url}/admin`);
  });

  await step('screenshots: farmer running, farmer waiting, owner, master', async () => {
    await screenshots(a, 'farmer-running');
    await screenshots(b, 'farmer-waiting');
    await screenshots(admin, 'admin-pump');
    await master.reload();
    await master.locator('.m-state', { hasText: 'RUNNING' }).waitFor();
    await screenshots(master, 'master');
  });

  await step('load shedding: every page shows HOLD with the reason, without a reload', async () => {
    device.loadShedding = true;
    await waitWord(a, 'ON HOLD');
    await a.locator('#state-detail', { hasText: 'Power cut (load shedding)' }).waitFor();
    await a.locator('#device-status', { hasText: 'Power cut' }).waitFor();
    await b.locator('#queue-body .tag', { hasText: 'ON HOLD' }).waitFor();
    await b.locator('#state-note', { hasText: 'paused' }).waitFor();
    await waitWord(admin, 'ON HOLD');
    await admin.locator('#state-detail', { hasText: 'Power cut' }).waitFor();
    const held = await a.locator('#state-extra').innerText();
    // Three more device polls in HOLD (every 500 ms): more than a second has passed on the server
    // and in the page's own countdown.
    const polls = device.polls;
    await until(() => device.polls >= polls + 3, 'three more device polls');
    assert((await a.locator('#state-extra').innerText()) === held, 'the remaining time is frozen in HOLD');
    await screenshots(a, 'farmer-hold');
  });

  await step('the grid is back: RUNNING again', async () => {
    device.loadShedding = false;
    await waitWord(a, 'RUNNING');
    await waitWord(admin, 'RUNNING');
  });

  await step('A stops: B’s page turns RUNNING by itself', async () => {
    await a.locator('#motor-button', { hasText: 'STOP' }).click();
    await waitWord(a, 'IDLE'); // Salma's run now: Karim is not pumping
    await a.locator('#state-extra', { hasText: 'Another farmer is pumping' }).waitFor();
    await waitWord(b, 'RUNNING');
    await b.locator('#state-extra', { hasText: 'Your pump is running' }).waitFor();
    await b.locator('#motor-button', { hasText: 'STOP' }).waitFor();
    await admin.locator('#state-detail', { hasText: 'Salma Begum' }).waitFor();
  });

  await step('the turn reaches farmer B’s phone through Expo (A, who started the free pump, is not told): the exact request, drawn as a notification', async () => {
    const turns = () =>
      expo.requests
        .filter((r) => r.path === '/--/api/v2/push/send')
        .flatMap((r) => JSON.parse(r.body).map((message) => ({ request: r, message })))
        .filter(({ message }) => message.data?.kind === 'RUN_STARTED');
    await until(() => turns().length > 0, 'a push of a turn that came');
    const [{ request, message }, ...more] = turns();
    assert(more.length === 0, `one turn told: ${JSON.stringify(turns().map((t) => t.message))}`);
    assert(request.method === 'POST' && request.headers['content-type'] === 'application/json', `a JSON POST: ${request.method} ${request.headers['content-type']}`);
    assert(request.headers.authorization === undefined, 'no access token configured, none sent');
    assert(JSON.parse(request.body).length === 1, `one message per token: ${request.body}`);
    assert(
      JSON.stringify(Object.keys(message).sort()) === JSON.stringify(['body', 'data', 'sound', 'title', 'to']) &&
        message.to === PUSH_TOKENS.b &&
        message.title === 'Your turn' &&
        message.body === 'Your turn came: the pump is starting for you.' &&
        message.sound === 'default' &&
        message.data.kind === 'RUN_STARTED' &&
        /^[0-9a-f]{32}$/.test(message.data.id),
      `the exact message: ${request.body}`,
    );
    const card = await browser.newPage({ viewport: PHONE, deviceScaleFactor: 2 });
    await card.setContent(pushCard(request));
    assert((await card.locator('#push-title').innerText()) === message.title, 'the card shows the title sent');
    await painted(card);
    await card.screenshot({ path: join(shots, 'alerts-push-phone.png') });
    await card.close();
  });

  await step('a farmer asks for at most the owner’s limit', async () => {
    await a.goto(`${server.url}/user/minutes`);
    await a.getByText('At most 120 min in one request').waitFor();
    await a.locator('#req-minutes').fill('121');
    await a.getByRole('button', { name: 'Send request' }).click();
    await a.getByText('Please check what you entered.').waitFor();
    assert((await a.locator('#req-minutes').inputValue()) === '121', 'the typed value is kept');
    await a.goto(`${server.url}/user`);
  });

  await step('a farmer cannot reach the owner’s pages (403 page)', async () => {
    const response = await a.goto(`${server.url}/admin/farmers`);
    assert(response.status() === 403, `status ${response.status()}`);
    await a.getByText('Not for your account').waitFor();
  });

  await step('usage chart and audit log for the owner', async () => {
    await admin.goto(`${server.url}/admin/usage`);
    await admin.locator('svg.chart rect.bar').first().waitFor({ state: 'attached' });
    await admin.locator('.hbars .hb-name', { hasText: 'Karim Mia' }).first().waitFor();
    // Cash taken: per day (a chart in taka) and per farmer, from the receipts.
    await admin.locator('#revenue', { hasText: 'Cash taken in these days: 120 taka' }).waitFor();
    await admin.locator('#revenue svg.chart text.unit', { hasText: 'taka' }).waitFor({ state: 'attached' });
    await admin.locator('.hbars .hb-value', { hasText: '60 taka' }).first().waitFor();
    await screenshots(admin, 'admin-usage');
    await admin.locator('#revenue').scrollIntoViewIfNeeded();
    await admin.screenshot({ path: join(shots, 'admin-revenue-phone.png') });
    await admin.goto(`${server.url}/admin/log`);
    await admin.locator('#audit td', { hasText: 'Device registered' }).first().waitFor();
    await admin.screenshot({ path: join(shots, 'admin-log-phone.png') });
    // Filtered by kind: only the two recharges, their numbers in words.
    await admin.locator('#log-filter select[name=kind]').selectOption('recharge');
    await admin.getByRole('button', { name: 'Show' }).click();
    await admin.locator('#audit td', { hasText: '+30 min (60 taka)' }).first().waitFor();
    const kinds = await admin.locator('#audit tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.action));
    assert(kinds.length === 2 && kinds.every((k) => k === 'recharge'), `only recharges: ${kinds}`);
    await admin.locator('#log-count', { hasText: 'Lines 1 to 2' }).waitFor();
    await admin.goto(`${server.url}/admin/farmers`);
    await admin.getByRole('link', { name: 'Karim Mia' }).first().waitFor();
    await admin.screenshot({ path: join(shots, 'admin-farmers-phone.png') });
    // A page's script reading the same list twice: the browser keeps the first answer and asks
    // again with its tag, and the unchanged list comes back without its body (a 304 the browser
    // hands to the script as the 200 it kept). On a phone of its own: the owner's here has routes
    // set, and Playwright turns a page's cache off while it routes.
    const owner = await phone('owner, cache');
    await signIn(owner, 'rahim', 'rahim-password');
    const reads = await owner.evaluate(async () => {
      const path = '/api/admin/usage';
      for (let i = 0; i < 2; i++) {
        const answer = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        if (answer.status !== 200) throw new Error(`${path}: ${answer.status}`);
        await answer.text();
      }
      return performance.getEntriesByType('resource').filter((e) => e.name.endsWith(path)).slice(-2).map((e) => ({ transfer: e.transferSize, body: e.encodedBodySize }));
    });
    const [first, again] = reads;
    assert(first.body > 0 && again.body === first.body, `the same list both times: ${JSON.stringify(reads)}`);
    assert(again.transfer < first.transfer - first.body / 2, `the second read came without its body: ${JSON.stringify(reads)}`);
    await owner.context().close();
  });

  await step('Bangla renders with Bangla digits, and is remembered', async () => {
    await a.goto(`${server.url}/user`);
    await a.locator('button[lang="bn"]').click();
    await a.locator('html[lang="bn"]').waitFor();
    await waitWord(a, 'বন্ধ');
    await a.locator('#motor-button', { hasText: 'সারিতে দাঁড়ান' }).waitFor();
    const balance = await a.locator('#balance-value').innerText();
    assert(/[০-৯]/.test(balance) && !/[0-9]/.test(balance), `the balance in Bangla digits: ${balance}`);
    await screenshots(a, 'farmer-bangla');
    await a.reload();
    await a.locator('html[lang="bn"]').waitFor();
    await b.goto(`${server.url}/user`);
    await b.locator('button[lang="bn"]').click();
    await waitWord(b, 'চলছে');
    const left = await b.locator('#state-detail').innerText();
    assert(/[০-৯]+ (মিনিট|সেকেন্ড).* বাকি/.test(left), `the countdown in Bangla digits, with units: ${left}`);
  });

  await step('server gone: the owner’s page says as of when; back: "back online", which goes away', async () => {
    await admin.goto(`${server.url}/admin`);
    await admin.locator('#live-status', { hasText: 'Live updates are off' }).waitFor();
    const gone = (route) => route.abort();
    await admin.route('**/api/motor/status', gone);
    const lost = admin.locator('#live-status.lost', { hasText: 'Cannot reach the server' });
    await lost.waitFor();
    assert(/as of \d{1,2}:\d\d (AM|PM)/.test(await lost.innerText()), `an "as of" time: ${await lost.innerText()}`);
    await admin.screenshot({ path: join(shots, 'admin-offline-phone.png') });
    await admin.unroute('**/api/motor/status', gone);
    await admin.locator('#live-status.back', { hasText: 'Back online' }).waitFor();
    await admin.waitForFunction(() => !/Back online|Cannot reach/.test(document.getElementById('live-status').textContent) || document.getElementById('live-status').hidden, null, { timeout: 10_000 });
  });

  /**
   * Farmer A's page on a clock the test moves (Playwright's), its stream live and the page
   * quiet; `streams.opened` counts the event streams it opens.
   */
  async function farmerOnTestClock(name) {
    const page = await a.context().newPage();
    page.on('pageerror', (err) => pageErrors.push(`farmer A, ${name}: ${err.message}`));
    page.on('dialog', (dialog) => dialog.accept());
    const streams = { opened: 0 };
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/events') streams.opened++;
    });
    await page.clock.install();
    await page.goto(`${server.url}/user`);
    await page.locator('#state-word').waitFor();
    await page.waitForFunction(() => document.getElementById('live-status').hidden, null, { timeout: 10_000 });
    return { page, streams };
  }

  await step('a link that drops without a word: the farmer’s page says so once the stream is 20 s silent, a tap gives up after 15 s, and the stream is opened anew', async () => {
    // The page's clock is the test's: 20 s pass at once (`runFor` fires every timer on the way,
    // as for a page awake all along), and the server's state (every 15 s) does not come in them.
    // Every request the page makes meanwhile waits for ever, as on a link that dropped (the
    // browser would notice in minutes).
    const { page, streams } = await farmerOnTestClock('link dropped');
    const hang = () => {};
    await page.route('**/*', hang);
    await page.clock.runFor(19_000);
    assert(await page.locator('#live-status').isHidden(), 'no word of the link before the stream is 20 s silent');
    await page.clock.runFor(2_000);
    // (Farmer A reads Bangla, chosen above.)
    await page.locator('#live-status.lost', { hasText: 'সার্ভার' }).waitFor({ timeout: 3_000 });
    // The picture is as of the bar's time: greyed, its clocks stopped (Farmer B's run counts down
    // no further here).
    await page.locator('#state.stale').waitFor({ timeout: 3_000 });
    const frozen = await page.locator('#state').innerText();
    await page.clock.runFor(5_000);
    assert((await page.locator('#state').innerText()) === frozen, `the clock stopped: ${frozen}`);
    // A tap meanwhile waits 15 s at most, says why in words, and leaves the button to tap again.
    const button = page.locator('#motor-button');
    await button.click();
    assert(await button.isDisabled(), 'the button waits for its answer');
    await page.clock.runFor(15_000);
    await page.locator('#action-error').waitFor({ timeout: 3_000 });
    assert(await button.isEnabled(), 'the button can be tapped again');
    // The link is back: the next poll answers ("back online"), and the stream, tried again after
    // its pause (3 s, then 6 s: the try made while the link was down never spoke), is open anew.
    await page.unroute('**/*', hang);
    await page.clock.runFor(3_000);
    await page.locator('#live-status.back').waitFor({ timeout: 5_000 });
    await page.clock.runFor(15_000);
    await until(() => streams.opened === 3, `the stream opened anew: ${streams.opened} opened`);
    await page.close();
  });

  await step('a page that slept (the phone put the browser away) does not cry "cannot reach": its stream is opened anew', async () => {
    const { page, streams } = await farmerOnTestClock('slept');
    // A minute asleep: the timers fire once, when it wakes.
    await page.clock.fastForward(60_000);
    assert((await page.locator('#live-status.lost').count()) === 0, 'no "cannot reach the server" for a page that slept');
    await page.clock.runFor(3_000);
    await until(() => streams.opened === 2, `the stream opened anew: ${streams.opened} opened`);
    assert((await page.locator('#live-status.lost').count()) === 0, 'no "cannot reach the server" for a page that slept');
    await page.close();
  });

  await step('a poll the dropped link leaves unanswered is given up after 15 s, and the owner’s page says so', async () => {
    const page = await admin.context().newPage();
    page.on('pageerror', (err) => pageErrors.push(`owner, poll unanswered: ${err.message}`));
    await page.clock.install();
    await page.route('**/api/events', (route) => route.abort());
    await page.goto(`${server.url}/admin`);
    await page.locator('#live-status', { hasText: 'Live updates are off' }).waitFor();
    const hang = () => {};
    await page.route('**/api/motor/status', hang);
    // The next poll goes out and waits; 15 s later it is given up.
    await page.clock.fastForward(4_000);
    await page.clock.fastForward(14_000);
    assert(await page.locator('#live-status.lost').count() === 0, 'not given up before 15 s');
    await page.clock.fastForward(2_000);
    await page.locator('#live-status.lost', { hasText: 'Cannot reach the server' }).waitFor({ timeout: 3_000 });
    await page.close();
  });

  await step('the master publishes firmware from the page (a bad signature refused in words, in both languages) and rolls it out to one owner first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pumppilot-firmware-'));
    cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name, bytes) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    const image = Buffer.alloc(804_628);
    for (let i = 0; i < image.length; i++) image[i] = (i * 2654435761) >>> 24;
    const bin = file('pumppilot-fw.bin', image);
    const upload = async (sig, version, imageFile = bin) => {
      await master.locator('#fw-image').setInputFiles(imageFile);
      await master.locator('#fw-signature').setInputFiles(sig);
      await master.locator('#fw-version').fill(version);
      await master.locator('#upload button[type=submit]').click();
    };
    await master.goto(`${server.url}/master`);
    await master.getByRole('link', { name: 'Firmware' }).click();
    await master.locator('#releases', { hasText: 'No firmware published yet.' }).waitFor();
    // Signed as another version: refused in words, nothing published.
    const wrong = file('wrong.sig', `${signImage('1.9.0', image)}\n`);
    await upload(wrong, '2.0.0');
    await master.locator('.flash.err', { hasText: 'The signature does not match this image' }).waitFor();
    await master.locator('#releases', { hasText: 'No firmware published yet.' }).waitFor();
    await master.locator('button[lang="bn"]').click();
    await master.locator('html[lang="bn"]').waitFor();
    await upload(wrong, '2.0.0');
    await master.locator('.flash.err', { hasText: 'সইটি এই ইমেজ' }).waitFor();
    await master.screenshot({ path: join(shots, 'master-firmware-refused-bangla-phone.png') });
    await master.locator('button[lang="en"]').click();
    await master.locator('html[lang="en"]').waitFor();
    // Signed right (the .sig file as `pumppilot firmware sign` writes it).
    await upload(file('pumppilot-fw.bin.sig', `${signImage('2.0.0', image)}\n`), '2.0.0');
    await master.locator('.flash.ok', { hasText: 'Firmware 2.0.0 is published (804,628 bytes).' }).waitFor();
    await master.locator('tr[data-version="2.0.0"]', { hasText: 'Nobody yet' }).waitFor();
    // Rahim's pump first, confirmed; his device is offered it, then reports running it.
    await master.locator('#ro-to').selectOption({ label: 'Rahim Uddin' });
    await master.locator('#rollout input[name=confirm]').check();
    await master.getByRole('button', { name: 'Set the rollout' }).click();
    await master.locator('.flash.ok', { hasText: 'Firmware 2.0.0 is now meant for: Rahim Uddin first.' }).waitFor();
    await until(() => device.update === '2.0.0', 'the device is offered 2.0.0');
    // The owner watches the update on the pump page, which stays open from here on.
    await admin.goto(`${server.url}/admin`);
    await admin.locator('.device [data-update="OFFERED"]', { hasText: 'update 2.0.0 offered' }).waitFor();
    // Marked stale here: only the page script's redraw can put a time back.
    await admin.locator('.device .d-seen').evaluate((dd) => { dd.textContent = 'stale'; });
    device.fw = 'pumppilot-fw/2.0.0';
    await until(async () => {
      await master.goto(`${server.url}/master/firmware`);
      return (await master.locator('tr[data-version="2.0.0"] .running').innerText()).includes('1 of 1 device runs it');
    }, 'the page counts the device running 2.0.0');
    await until(() => device.update === null, 'no offer once it runs it');
    // The owner's page, never reloaded, shows the device's new version and that it is up to
    // date (the page script reads the devices every 10 s).
    const update = admin.locator('.device [data-update="UPDATED"]', { hasText: 'up to date' });
    await update.waitFor({ timeout: 25_000 });
    await admin.locator('.device .d-version', { hasText: 'pumppilot-fw/2.0.0' }).waitFor();
    await admin.locator('.device [data-update="OFFERED"]').waitFor({ state: 'detached' });
    // The last-seen time redrawn by the script reads as the server writes it on a fresh page (the
    // same zone; read again until they agree, as a minute may turn between the two reads).
    const seenAsWritten = async () => {
      const drawn = await admin.locator('.device .d-seen').innerText();
      const written = await admin.evaluate(async () => {
        const html = await (await fetch('/admin', { credentials: 'same-origin' })).text();
        return new DOMParser().parseFromString(html, 'text/html').querySelector('.device .d-seen').textContent.trim();
      });
      return { drawn, written };
    };
    let seen = { drawn: '', written: '' };
    const same = async () => {
      seen = await seenAsWritten();
      return seen.drawn === seen.written;
    };
    await until(same, 'the script writes the last-seen time as the server does').catch((err) => {
      throw new Error(`${err.message}: drawn "${seen.drawn}", written "${seen.written}"`);
    });
    assert(/^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{1,2}:\d\d (AM|PM)$/.test(seen.drawn), `the last-seen time redrawn: ${seen.drawn}`);
    await update.evaluate((chip) => chip.closest('.device').scrollIntoView());
    await painted(admin);
    await admin.screenshot({ path: join(shots, 'admin-device-update-phone.png') });
    // A newer image, meant for nobody yet, beside it.
    const newer = Buffer.concat([image, Buffer.alloc(7_372, 1)]);
    await upload(file('newer.bin.sig', `${signImage('2.1.0', newer)}\n`), '2.1.0', file('newer.bin', newer));
    await master.locator('.flash.ok', { hasText: 'Firmware 2.1.0 is published' }).waitFor();
    await master.locator('tr[data-version="2.1.0"]', { hasText: 'Nobody yet' }).waitFor();
    // The releases at the top of the phone's screen (past the title and the intro), the whole
    // page's top on the desktop.
    await master.goto(`${server.url}/master/firmware`);
    await master.locator('#releases h2').evaluate((h) => window.scrollTo(0, h.closest('section').offsetTop - 8));
    await painted(master);
    await master.screenshot({ path: join(shots, 'master-firmware-phone.png') });
    await master.setViewportSize(DESKTOP);
    await master.evaluate(() => window.scrollTo(0, 0));
    await painted(master);
    await master.screenshot({ path: join(shots, 'master-firmware-desktop.png') });
    await master.setViewportSize(PHONE);
  });

  await step('every page of every role fits 360 px and every control is at least 48×48 px, in English and Bangla', async () => {
    const [farmerId, receiptId] = await admin.evaluate(async () => {
      const users = await (await fetch('/api/admin/users', { credentials: 'same-origin' })).json();
      const receipts = await (await fetch('/api/admin/receipts', { credentials: 'same-origin' })).json();
      return [users[0].id, receipts[0].id];
    });
    const ownerId = await master.evaluate(async () => (await (await fetch('/api/master/admins')).json()).admins[0].id);
    // Farmer A's copy of a receipt of theirs, opened from their ledger.
    const ownReceipt = await a.evaluate(async () => {
      const wallet = await (await fetch('/api/wallet', { credentials: 'same-origin' })).json();
      return wallet.ledger.find((line) => line.receiptId && line.kind === 'RECHARGE')?.receiptId;
    });
    assert(ownReceipt, 'farmer A has a receipt in their ledger');
    const pages = [
      [null, ['/login']],
      [master, ['/master', `/master/owners/${ownerId}`, '/master/firmware']],
      [admin, ['/admin', '/admin/farmers', `/admin/farmers/${farmerId}`, `/admin/receipts/${receiptId}`, '/admin/requests', '/admin/usage', '/admin/log']],
      [a, ['/user', '/user/minutes', '/user/history', `/user/receipts/${ownReceipt}`]],
    ];
    const problems = [];
    const signedOut = await phone('signed out');
    for (const [page0, paths] of pages) {
      const page = page0 || signedOut;
      for (const lang of ['en', 'bn']) {
        await page.context().addCookies([{ name: 'pp_lang', value: lang, url: server.url }]);
        await page.setViewportSize({ width: 360, height: 740 });
        for (const path of paths) {
          const response = await page.goto(`${server.url}${path}`);
          assert(response.ok(), `${path} answered ${response.status()}: the page itself is checked, not an error page`);
          await page.locator(`html[lang="${lang}"]`).waitFor();
          await page.evaluate(() => document.fonts.ready);
          const found = await layoutProblems(page);
          for (const f of found) problems.push(`${lang} ${path}: ${f}`);
        }
        await page.setViewportSize(PHONE);
      }
      await page.context().addCookies([{ name: 'pp_lang', value: 'en', url: server.url }]);
    }
    await signedOut.close();
    assert(problems.length === 0, `layout problems at 360×740:\n${problems.join('\n')}`);
  });

  await step('farmer B stops; signing out ends the session', async () => {
    await b.locator('#motor-button').click();
    await waitWord(b, 'বন্ধ');
    await b.getByRole('button', { name: 'সাইন আউট' }).click();
    await b.waitForURL((u) => u.pathname === '/login');
    const response = await b.goto(`${server.url}/user`);
    assert(new URL(response.url()).pathname === '/login', 'signed out');
  });

  await step('owner renames Salma and makes her a new password: shown once, the old sign-in ends', async () => {
    await admin.goto(`${server.url}/admin/farmers`);
    await admin.getByRole('link', { name: 'Salma Begum' }).first().click();
    // The code the farmer scans to open the app on this server, signed in as far as a code can.
    await admin.locator('#app-sign-in .qr svg path').waitFor({ state: 'attached' });
    const link = await admin.locator('#app-link').getAttribute('href');
    const host = encodeURIComponent(new URL(server.url).origin);
    assert(link === `pumppilot://sign-in?server=${host}&username=01711000002`, `the app link: ${link}`);
    await admin.locator('#app-sign-in').scrollIntoViewIfNeeded();
    await admin.screenshot({ path: join(shots, 'admin-app-qr-phone.png') });
    await admin.locator('#e-name').fill('Salma Akter');
    await admin.getByRole('button', { name: 'Save the name' }).click();
    await admin.getByText('The name is now Salma Akter.').waitFor();
    await admin.locator('h1', { hasText: 'Salma Akter' }).waitFor();
    const salma = await phone('Salma again');
    await signIn(salma, '01711000002', '01711000002-pw');
    const asked = [];
    const seen = (dialog) => asked.push(dialog.message());
    admin.on('dialog', seen);
    await admin.getByRole('button', { name: 'Make a new password' }).click();
    await admin.locator('#new-password h1', { hasText: 'New password for Salma Akter' }).waitFor();
    admin.off('dialog', seen);
    assert(asked.length === 1 && /new password/.test(asked[0]), `asked first: ${asked}`);
    const password = await admin.locator('#password-value').inputValue();
    assert(/^[a-z2-9]{10}$/.test(password), `a password a farmer can type: ${password}`);
    await admin.screenshot({ path: join(shots, 'admin-new-password-phone.png') });
    // The old session is over; the new password works.
    const response = await salma.goto(`${server.url}/user`);
    assert(new URL(response.url()).pathname === '/login', 'the old sign-in ended');
    await signIn(salma, '01711000002', password);
    assert(new URL(salma.url()).pathname === '/user', `signed in with the new password: ${salma.url()}`);
    await salma.context().close();
    await admin.getByRole('link', { name: 'Done' }).click();
    await admin.goto(`${server.url}/admin/log`);
    await admin.locator('#audit td', { hasText: 'New password made' }).first().waitFor();
    await admin.locator('#audit td', { hasText: 'Farmer renamed' }).first().waitFor();
    // Filtered by farmer, in Bangla: her lines only, the details in Bangla digits.
    await admin.context().addCookies([{ name: 'pp_lang', value: 'bn', url: server.url }]);
    const salmaId = await admin.locator('#log-filter select[name=farmer] option', { hasText: 'Salma Akter' }).getAttribute('value');
    await admin.goto(`${server.url}/admin/log?farmer=${salmaId}`);
    await admin.locator('#audit td', { hasText: '+৩০ মিনিট (৬০ টাকা)' }).waitFor();
    const about = await admin.locator('#audit tbody tr').count();
    assert(about === 4, `Salma's lines: added, recharged, renamed, new password: ${about}`);
    await admin.screenshot({ path: join(shots, 'admin-log-bangla-phone.png') });
    await admin.context().addCookies([{ name: 'pp_lang', value: 'en', url: server.url }]);
  });

  await step('the master sees totals across pumps and opens a pump: its queue, farmers and usage', async () => {
    await master.goto(`${server.url}/master`);
    await master.locator('#totals dd', { hasText: '120 taka' }).waitFor();
    await master.locator('#totals', { hasText: 'Pump owners' }).waitFor();
    await screenshots(master, 'master-totals');
    await master.getByRole('link', { name: 'Rahim Uddin' }).click();
    await master.locator('#pump-title', { hasText: 'Pump of Rahim Uddin' }).waitFor();
    await master.locator('#pump-farmers td', { hasText: 'Karim Mia' }).waitFor();
    await master.locator('#pump-farmers td', { hasText: 'Salma Akter' }).waitFor();
    await master.locator('#pump-usage dd', { hasText: '120 taka' }).waitFor();
    await master.locator('#queue-body').waitFor();
    await screenshots(master, 'master-pump');
  });

  await step('many pump owners: the master sees them a page at a time (20, by username), finds one, and every page fits 360 px in English and Bangla', async () => {
    const created = await master.evaluate(async () => {
      const statuses = [];
      for (let i = 0; i < 21; i++) {
        const n = String(i).padStart(2, '0');
        const r = await fetch('/api/master/admins', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `Owner ${n}`, username: `owner-${n}`, password: 'owner-password' }),
        });
        statuses.push(r.status);
      }
      return statuses;
    });
    assert(created.every((s) => s === 201), `owners created: ${created}`);
    await master.goto(`${server.url}/master`);
    await master.locator('#owners-total', { hasText: '22 in all' }).waitFor();
    // Every pump's totals, whatever the page: the 120 taka taken at Rahim's pump among them.
    await master.locator('#totals h2', { hasText: 'All pumps' }).waitFor();
    await master.locator('#totals dd', { hasText: '120 taka' }).waitFor();
    const rows = await master.locator('#owners tr[data-owner]').count();
    assert(rows === 20, `20 owners on the first page: ${rows}`);
    // The page's live refresh reads the very page of the API it shows.
    const live = await master.evaluate(async () => (await (await fetch(document.getElementById('owners').dataset.api)).json()));
    assert(live.admins.length === 20 && live.next === 'owner-19' && live.total === 22, `the live page: ${JSON.stringify(live).slice(0, 200)}`);
    const problems = [];
    for (const lang of ['en', 'bn']) {
      await master.context().addCookies([{ name: 'pp_lang', value: lang, url: server.url }]);
      for (const path of ['/master', '/master?after=owner-19', '/master?q=owner-1', '/master?q=nobody', '/master/firmware?owner=owner-0']) {
        await master.goto(`${server.url}${path}`);
        await master.locator(`html[lang="${lang}"]`).waitFor();
        await master.evaluate(() => document.fonts.ready);
        for (const f of await layoutProblems(master)) problems.push(`${lang} ${path}: ${f}`);
      }
      await master.goto(`${server.url}/master`);
      await painted(master);
      await master.screenshot({ path: join(shots, `master-owners-paged${lang === 'bn' ? '-bangla' : ''}-phone.png`), fullPage: true });
    }
    await master.context().addCookies([{ name: 'pp_lang', value: 'en', url: server.url }]);
    assert(problems.length === 0, `layout problems at 360×740:\n${problems.join('\n')}`);

    await master.goto(`${server.url}/master`);
    await master.locator('#owner-pages a[rel=next]').click();
    await master.locator('#owners tr[data-owner]', { hasText: 'Rahim Uddin' }).waitFor();
    await master.locator('#owners tr[data-owner]', { hasText: 'Owner 20' }).waitFor();
    assert((await master.locator('#owners tr[data-owner]').count()) === 2, 'the second page holds the last two');
    assert((await master.locator('#owner-pages a[rel=next]').count()) === 0, 'no page after the last');
    await master.locator('#totals dd', { hasText: '120 taka' }).waitFor();
    await master.locator('#owner-pages a[rel=first]').click();
    await master.locator('#owners tr[data-owner]', { hasText: 'Owner 00' }).waitFor();
    await master.locator('#find-owner input[name=q]').fill('rah');
    await master.locator('#find-owner button[type=submit]').click();
    await master.locator('#owners-total', { hasText: '1 in all' }).waitFor();
    await master.locator('#owners tr[data-owner]', { hasText: 'Rahim Uddin' }).waitFor();
    // The firmware rollout's list: the first 50 by username holds everyone here.
    await master.goto(`${server.url}/master/firmware`);
    await master.locator('#ro-to option', { hasText: 'Owner 20' }).waitFor({ state: 'attached' });
    await master.locator('#ro-to option', { hasText: 'Rahim Uddin' }).waitFor({ state: 'attached' });
  });

  await step('a server without a firmware key says so on the firmware page, and the warning fits 360 px in English and Bangla', async () => {
    // A second server as a new install starts: no PUMPPILOT_FIRMWARE_PUBLIC_KEY.
    const bare = await startServer({ masterUsername: MASTER.username, masterPassword: MASTER.password });
    cleanups.unshift(bare.stop);
    const page = await phone('master without a firmware key');
    await page.goto(`${bare.url}/`);
    await page.locator('#username').fill(MASTER.username);
    await page.locator('#password').fill(MASTER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));
    const problems = [];
    for (const [lang, words] of [['en', 'PUMPPILOT_FIRMWARE_PUBLIC_KEY'], ['bn', 'ফার্মওয়্যার কী']]) {
      await page.context().addCookies([{ name: 'pp_lang', value: lang, url: bare.url }]);
      await page.goto(`${bare.url}/master/firmware`);
      await page.locator(`html[lang="${lang}"]`).waitFor();
      await page.locator('#no-key', { hasText: words }).waitFor();
      await page.evaluate(() => document.fonts.ready);
      for (const f of await layoutProblems(page)) problems.push(`${lang}: ${f}`);
      await painted(page);
      await page.screenshot({ path: join(shots, `master-firmware-no-key${lang === 'bn' ? '-bangla' : ''}-phone.png`) });
    }
    await page.context().close();
    assert(problems.length === 0, `layout problems at 360×740:\n${problems.join('\n')}`);
  });

  assert(device.polls > 0, 'the device polled');
  log(`device polled ${device.polls} times (${device.failures} failed)`);
  if (pageErrors.length) throw new Error(`errors in the pages:\n${pageErrors.join('\n')}`);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(err.stack || String(err));
} finally {
  for (const clean of cleanups) {
    try {
      await clean();
    } catch {
      // keep cleaning
    }
  }
}
console.log(`${passed} passed, ${failed ? 1 : 0} failed`);
log(failed ? 'FAILED' : 'passed');
process.exit(failed ? 1 : 0);
