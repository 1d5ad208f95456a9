// A fake of the server behind a mocked `fetch`: routes by method and path, records every call,
// and can go offline. `withSessions` adds the mobile token rules the real server keeps (rotating
// refresh tokens; a reused one revokes the session; expired access tokens answer TOKEN_EXPIRED).
import type { Entry, Status, User } from '../src/api/types';

export const BASE = 'http://pump.test:8080';

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: any;
  token: string | null;
  /** The status answered (once answered). */
  answered?: number;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** A body that is not JSON (a proxy's error page). */
  raw?: string;
  /** An event stream's body, written to by the test as long as the app holds it. */
  stream?: FakeStream;
}

/** A server-sent event stream (the fake's `GET /api/events`): the test sends, the app reads. */
export class FakeStream {
  /** The app let go of it (closed, or the screen went away). */
  closed = false;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      this.controller = controller;
    },
    cancel: () => {
      this.closed = true;
    },
  });

  send(event: string, data: unknown) {
    if (!this.closed) this.controller.enqueue(new TextEncoder().encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  }

  /** The app's request was aborted: its read fails, as a real fetch's does. */
  abort() {
    if (this.closed) return;
    this.closed = true;
    this.controller.error(new Error('aborted'));
  }
}

export type Handler = (req: FakeRequest) => Reply | Promise<Reply>;

export function error(status: number, code: string, message = code.toLowerCase()): Reply {
  return { status, body: { error: { code, message } } };
}

export class FakeServer {
  readonly calls: FakeRequest[] = [];
  offline = false;
  /** Bytes of body sent so far (a 304 sends none). */
  bodyBytes = 0;
  private routes = new Map<string, Handler>();
  readonly fetch = jest.fn(async (url: string, init: RequestInit = {}) => this.handle(url, init));

  /** Answers `METHOD /path` (path params as `{id}` match any segment). */
  on(route: string, handler: Handler | Reply): this {
    this.routes.set(route, typeof handler === 'function' ? handler : () => handler);
    return this;
  }

  /** The handler of a route, to wrap it. */
  handler(route: string): Handler {
    const found = this.routes.get(route);
    if (!found) throw new Error(`no route ${route}`);
    return found;
  }

  install(): this {
    (globalThis as any).fetch = this.fetch;
    return this;
  }

  count(route: string): number {
    return this.calls.filter((c) => `${c.method} ${c.path}` === route).length;
  }

  last(route: string): FakeRequest | undefined {
    return [...this.calls].reverse().find((c) => `${c.method} ${c.path}` === route);
  }

  private find(method: string, path: string): Handler | undefined {
    const exact = this.routes.get(`${method} ${path}`);
    if (exact) return exact;
    for (const [route, handler] of this.routes) {
      const [m, pattern] = route.split(' ');
      if (m !== method || !pattern) continue;
      const re = new RegExp(`^${pattern.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      if (re.test(path)) return handler;
    }
    return undefined;
  }

  private async handle(url: string, init: RequestInit) {
    const u = new URL(url);
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    const auth = headers.authorization;
    const req: FakeRequest = {
      method: (init.method ?? 'GET').toUpperCase(),
      path: u.pathname,
      query: u.searchParams,
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      token: auth?.startsWith('Bearer ') ? auth.slice(7) : null,
    };
    this.calls.push(req);
    // Let other calls start before this one answers, as on a real network.
    await Promise.resolve();
    if (this.offline) throw new TypeError('Network request failed');
    const handler = this.find(req.method, req.path);
    const reply = handler ? await handler(req) : error(404, 'NOT_FOUND', `no fake for ${req.method} ${req.path}`);
    if (reply.stream) {
      const stream = reply.stream;
      init.signal?.addEventListener('abort', () => stream.abort());
      req.answered = 200;
      return { ok: true, status: 200, statusText: '200', headers: { get: () => null }, body: stream.body, text: async () => '' };
    }
    let status = reply.status ?? 200;
    let text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    // As the server does (`unchanged.rs`): a 200 to a GET is tagged with its body's hash, and
    // answered 304 without the body to a caller that holds that tag.
    const tag = req.method === 'GET' && status === 200 ? `"${hash(text)}"` : null;
    if (tag && req.headers['if-none-match'] === tag) {
      status = 304;
      text = '';
    }
    req.answered = status;
    this.bodyBytes += text.length;
    return {
      ok: status >= 200 && status < 300,
      status,
      statusText: String(status),
      headers: { get: (name: string) => (name.toLowerCase() === 'etag' ? tag : null) },
      text: async () => text,
    };
  }
}

/** FNV-1a: a tag that changes with the body. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

/** Mobile sessions as the server keeps them. */
export function withSessions(server: FakeServer, accounts: { user: User; password: string }[]) {
  let n = 0;
  const access = new Map<string, { user: User; expired: boolean }>();
  const refresh = new Map<string, { user: User; state: 'current' | 'used' | 'revoked'; session: number }>();
  const sessions = new Map<number, { revoked: boolean }>();

  const pair = (user: User, session: number) => {
    n++;
    const a = `m_access_${n}`;
    const r = `r_refresh_${n}`;
    access.set(a, { user, expired: false });
    refresh.set(r, { user, state: 'current', session });
    return { accessToken: a, refreshToken: r, expiresIn: 900, user };
  };

  server.on('POST /api/mobile/login', (req) => {
    const account = accounts.find((a) => a.user.username === req.body.username && a.password === req.body.password);
    if (!account) return error(401, 'INVALID_CREDENTIALS', 'wrong username or password');
    const session = sessions.size + 1;
    sessions.set(session, { revoked: false });
    return { body: pair(account.user, session) };
  });
  server.on('POST /api/mobile/refresh', (req) => {
    const found = refresh.get(req.body.refreshToken);
    if (!found || sessions.get(found.session)?.revoked) return error(401, 'UNAUTHENTICATED');
    if (found.state === 'used') {
      sessions.get(found.session)!.revoked = true;
      return error(401, 'UNAUTHENTICATED');
    }
    found.state = 'used';
    return { body: pair(found.user, found.session) };
  });
  server.on('POST /api/mobile/logout', (req) => {
    const found = refresh.get(req.body.refreshToken);
    if (found) sessions.get(found.session)!.revoked = true;
    return { status: 204 };
  });

  return {
    /** A refresh token for `user` as if they had signed in before (the app's stored one). */
    storedRefreshToken(user: User): string {
      const session = sessions.size + 1;
      sessions.set(session, { revoked: false });
      return pair(user, session).refreshToken;
    },
    /** Every access token handed out so far expires. */
    expireAll() {
      for (const v of access.values()) v.expired = true;
    },
    revoked(refreshToken: string): boolean {
      const found = refresh.get(refreshToken);
      return !!found && !!sessions.get(found.session)?.revoked;
    },
    /** Wraps a handler so it needs a valid, unexpired access token. */
    authed(handler: Handler | Reply, role?: User['role'][]): Handler {
      return async (req) => {
        const found = req.token ? access.get(req.token) : undefined;
        if (!found) return error(401, 'UNAUTHENTICATED');
        if (found.expired) return error(401, 'TOKEN_EXPIRED', 'the token has expired');
        if (role && !role.includes(found.user.role)) return error(403, 'FORBIDDEN', 'this needs an admin');
        return typeof handler === 'function' ? handler(req) : handler;
      };
    },
  };
}

// ---- Fixtures -------------------------------------------------------------------------------

export const ADMIN: User = { id: 'a1', username: 'rahim', name: 'Rahim Uddin', role: 'admin', adminId: 'a1', suspended: false };
export const KARIM: User = { id: 'u1', username: 'karim', name: 'Karim Mia', role: 'user', adminId: 'a1', suspended: false };
export const SALMA: User = { id: 'u2', username: 'salma', name: 'Salma Begum', role: 'user', adminId: 'a1', suspended: false };
export const MASTER: User = { id: 'm1', username: 'master', name: 'Master', role: 'master', adminId: null, suspended: false };

export function entry(over: Partial<Entry> = {}): Entry {
  return {
    id: 'e1',
    userId: KARIM.id,
    userName: KARIM.name,
    adminId: 'a1',
    status: 'RUNNING',
    remainingSeconds: 1800,
    startedAt: '2026-11-27T08:00:00Z',
    ...over,
  };
}

export function status(over: { motor?: Partial<Status['motor']>; me?: Partial<Status['me']>; device?: Partial<Status['device']> } = {}): Status {
  const seconds = over.me?.availableSeconds ?? 1800;
  const motor: Status['motor'] = { state: 'IDLE', ...over.motor };
  const mine = over.me?.entry;
  const relay = over.device?.relay ?? motor.state === 'RUNNING';
  const d = { online: true, loadShedding: false, ready: true, ...over.device };
  const derived = !d.online
    ? 'OFFLINE'
    : d.loadShedding
      ? 'POWER_CUT'
      : !d.ready
        ? 'NOT_READY'
        : relay
          ? motor.state === 'RUNNING'
            ? 'PUMPING'
            : 'SWITCHING_OFF'
          : motor.state === 'RUNNING'
            ? 'SWITCHING_ON'
            : 'READY';
  return {
    motor,
    // The farmer's own state and the device's one status, as the server derives them.
    me: {
      state: mine && mine.status !== 'COMPLETED' && mine.status !== 'CANCELLED' ? mine.status : 'IDLE',
      entry: null,
      availableSeconds: seconds,
      availableMinutes: Math.floor(seconds / 60),
      ...over.me,
    },
    device: {
      status: derived,
      online: true,
      loadShedding: false,
      ready: true,
      relay,
      ...over.device,
    },
  };
}

export const idle = () => status();
export const runningMine = (remaining = 1800, balance = 1800) =>
  status({
    motor: { state: 'RUNNING', activeUserId: KARIM.id, remainingSeconds: remaining },
    me: { entry: entry({ remainingSeconds: remaining }), availableSeconds: balance },
  });
