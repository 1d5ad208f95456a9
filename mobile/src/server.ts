// Finding the server: the one built into the app, a sign-in link from the owner's dashboard
// (`pumppilot://sign-in?server=…&username=…`, also as a QR code), or a typed address; and when a
// server cannot be used, why, in a way a farmer can act on.
import Constants from 'expo-constants';

import { normaliseServerUrl } from './api/client';

/** The server this build was made for (`PUMPPILOT_SERVER_URL`, see app.config.ts), or ''. */
export function builtInServerUrl(): string {
  const value: unknown = Constants.expoConfig?.extra?.serverUrl;
  return typeof value === 'string' ? normaliseServerUrl(value) : '';
}

export interface SignInLink {
  server: string;
  username: string;
}

/** The server and username of a sign-in link, or null for any other URL. */
export function parseSignInLink(url: string | null | undefined): SignInLink | null {
  if (!url) return null;
  const match = /^pumppilot:\/\/+sign-in\/?\?(.*)$/i.exec(url.trim());
  if (!match) return null;
  const params = new URLSearchParams(match[1]);
  const server = normaliseServerUrl(params.get('server') ?? '');
  if (!/^https?:\/\/[^/\s]+$/i.test(server)) return null;
  return { server, username: (params.get('username') ?? '').trim() };
}

/** Why a server cannot be used, as the error codes the sign-in screen puts in words. */
export type ServerProblem = 'SERVER_UNREACHABLE' | 'SERVER_TLS' | 'NOT_PUMPPILOT';

/** A server that cannot be used for sign-in. */
export class ServerProblemError extends Error {
  constructor(readonly code: ServerProblem) {
    super(code);
    this.name = 'ServerProblemError';
  }
}

const TLS_WORDS = /ssl|tls|certificate|handshake|trust anchor|CERT_/i;

/**
 * Asks the server what it is: nothing answers (or the connection fails), the secure connection
 * fails, something that is not PumpPilot answers; null when it is a PumpPilot server.
 */
export async function diagnoseServer(baseUrl: string, timeoutMs = 8_000): Promise<ServerProblem | null> {
  const get = async (path: string) => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await fetch(`${baseUrl}${path}`, { method: 'GET', signal: abort.signal });
      return { status: response.status, text: await response.text() };
    } finally {
      clearTimeout(timer);
    }
  };
  let health: { status: number; text: string };
  try {
    health = await get('/healthz');
  } catch (err) {
    const words = err instanceof Error ? `${err.name} ${err.message}` : String(err);
    return TLS_WORDS.test(words) ? 'SERVER_TLS' : 'SERVER_UNREACHABLE';
  }
  if (health.status !== 200 || health.text.trim() !== 'ok') return 'NOT_PUMPPILOT';
  try {
    const doc = await get('/api/openapi.json');
    const title = (JSON.parse(doc.text) as { info?: { title?: unknown } }).info?.title;
    return title === 'PumpPilot API' ? null : 'NOT_PUMPPILOT';
  } catch {
    return 'NOT_PUMPPILOT';
  }
}
