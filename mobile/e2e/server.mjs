// Starts the real PumpPilot server binary for the e2e run and the schema script.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** A free TCP port on 127.0.0.1 (the OS picks it; we release it straight away). */
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

export function serverBinary() {
  const bin = resolve(process.env.PUMPPILOT_BIN || '../target/debug/pumppilot');
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: build it with \`cargo build -p pumppilot\` or set PUMPPILOT_BIN`);
  }
  return bin;
}

/**
 * Runs the server on a fresh SQLite file in a temporary folder and waits for /healthz.
 * Returns { url, stop, dir, log() }.
 */
export async function startServer({ masterUsername = 'master', masterPassword = 'master-password-e2e' } = {}) {
  const bin = serverBinary();
  const dir = mkdtempSync(join(tmpdir(), 'pumppilot-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(bin, [], {
    env: {
      ...process.env,
      PUMPPILOT_BIND: `127.0.0.1:${port}`,
      PUMPPILOT_DATABASE_URL: `sqlite://${join(dir, 'e2e.db')}`,
      PUMPPILOT_MASTER_USERNAME: masterUsername,
      PUMPPILOT_MASTER_PASSWORD: masterPassword,
      PUMPPILOT_LOG: process.env.PUMPPILOT_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));

  const stop = () =>
    new Promise((done) => {
      if (exited) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
      setTimeout(() => exited || child.kill('SIGKILL'), 3000).unref();
    });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`the server exited (${JSON.stringify(exited)}) before serving:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not answer /healthz within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, dir, stop, log: () => output, masterUsername, masterPassword };
}
