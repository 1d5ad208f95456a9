// The real PumpPilot binary for the browser tests (`web-tests/`, `mobile/e2e/`): a fresh SQLite
// file in a temporary folder, a free port, and a promise that resolves once /healthz answers.
// Plain Node (no packages), so either test folder can import it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repository = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released straight away). */
export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** `PUMPPILOT_BIN` (relative to the working folder), else the repository's debug build. */
export function serverBinary() {
  const bin = process.env.PUMPPILOT_BIN ? resolve(process.env.PUMPPILOT_BIN) : join(repository, 'target/debug/pumppilot');
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: build it with \`cargo build -p pumppilot\` or set PUMPPILOT_BIN`);
  }
  return bin;
}

/**
 * Runs `pumppilot serve` with the master's credentials and any more `settings` (PUMPPILOT_*
 * variables), and waits for /healthz. Returns { url, stop, log(), masterUsername, masterPassword };
 * `stop()` ends the server (SIGTERM, then SIGKILL after 3 s) and removes its folder.
 */
export async function startServer({ masterUsername = 'master', masterPassword = 'master-password-e2e', settings = {} } = {}) {
  const bin = serverBinary();
  const dir = mkdtempSync(join(tmpdir(), 'pumppilot-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      PUMPPILOT_BIND: `127.0.0.1:${port}`,
      PUMPPILOT_DATABASE_URL: `sqlite://${join(dir, 'pumppilot.db')}`,
      PUMPPILOT_MASTER_USERNAME: masterUsername,
      PUMPPILOT_MASTER_PASSWORD: masterPassword,
      PUMPPILOT_LOG: process.env.PUMPPILOT_LOG || 'warn',
      ...settings,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));

  const stop = () =>
    new Promise((done) => {
      const finish = () => {
        rmSync(dir, { recursive: true, force: true });
        done();
      };
      if (exited) return finish();
      child.once('exit', finish);
      child.kill('SIGTERM');
      setTimeout(() => exited || child.kill('SIGKILL'), 3000).unref();
    });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`the server exited (${JSON.stringify(exited)}) before serving:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not answer /healthz within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop, log: () => output, masterUsername, masterPassword };
}
