// The HTTP client: bearer tokens, transparent refresh, and errors the screens can put in words.
import type { paths } from './schema';
import type { Answer, BodyOf, PathParamsOf, PathWith, QueryOf, TokenPair, User } from './types';

/** An answer from the server that is not a success: its status and the stable code of API.md. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server could not be reached (no network, server down, or no answer in time). */
export class OfflineError extends Error {
  readonly code = 'OFFLINE';
  constructor(cause?: unknown) {
    super(cause instanceof Error ? cause.message : 'the server cannot be reached');
    this.name = 'OfflineError';
  }
}

/** The session is over (revoked, expired or suspended): the user must sign in again. */
export class SessionEndedError extends ApiError {
  constructor(status: number, code: string, message: string) {
    super(status, code, message);
    this.name = 'SessionEndedError';
  }
}

export interface Tokens {
  /** Null until the first refresh after the app starts again. */
  accessToken: string | null;
  /** Client clock, ms; the token is renewed a little before this. */
  accessExpiresAt: number;
  refreshToken: string;
}

export interface ClientHooks {
  /** Called with every new token pair; must keep the refresh token (it rotates on every use). */
  onTokens?(tokens: Tokens, user: User): void | Promise<void>;
  /** Called once when the server refuses the session; the app then shows the sign-in screen. */
  onSessionEnded?(error: ApiError): void;
}

export interface ClientOptions {
  baseUrl: string;
  tokens?: Tokens | null;
  hooks?: ClientHooks;
  now?: () => number;
  timeoutMs?: number;
}

/** Renew the access token this long before it expires, so a request never carries a dying one. */
export const REFRESH_MARGIN_MS = 30_000;

/**
 * The most answers kept for reads answered "unchanged". The screens in front read a handful of
 * paths again with every status; the one read longest ago is let go first.
 */
export const MOST_HELD = 32;

/** An answer kept with the server's tag for it (`ETag`), to be sent back when read again. */
interface Held {
  tag: string;
  value: unknown;
}

/** `192.168.0.5:8080/` → `http://192.168.0.5:8080`. */
export function normaliseServerUrl(input: string): string {
  let url = input.trim();
  if (!url) return url;
  if (!/^https?:\/\//i.test(url)) url = `http://${url}`;
  return url.replace(/\/+$/, '');
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type CallOptions<P extends keyof paths, M extends Method> = {
  body?: BodyOf<P, M>;
  query?: QueryOf<P, M>;
  params?: PathParamsOf<P, M>;
  /** Sent as `Idempotency-Key`: the server makes the change once per key (see `useOnceKey`). */
  onceKey?: string;
};

export class ApiClient {
  readonly baseUrl: string;
  private tokens: Tokens | null;
  private refreshing: Promise<void> | null = null;
  private ended = false;
  private readonly hooks: ClientHooks;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  /**
   * The last answer of each path read, with its tag. A read sends the tag back, and the server
   * answers 304 without the body when nothing changed (`crates/server/src/unchanged.rs`): the
   * screens read every few seconds on phones that pay for every byte. Forgotten when the
   * session ends; the server checks the session and scope of every read all the same.
   */
  private readonly held = new Map<string, Held>();

  constructor(options: ClientOptions) {
    this.baseUrl = normaliseServerUrl(options.baseUrl);
    this.tokens = options.tokens ?? null;
    this.hooks = options.hooks ?? {};
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  get signedIn(): boolean {
    return this.tokens !== null && !this.ended;
  }

  get refreshToken(): string | null {
    return this.tokens?.refreshToken ?? null;
  }

  /** Signs in; keeps the tokens and returns the account. */
  async login(username: string, password: string, deviceName?: string): Promise<User> {
    const pair = (await this.send('post', '/api/mobile/login', null, {
      username,
      password,
      deviceName: deviceName ?? null,
    })) as TokenPair;
    this.ended = false;
    this.held.clear();
    await this.accept(pair);
    return pair.user;
  }

  /**
   * Revokes this session on the server and forgets the tokens. Throws `OfflineError` when the
   * server cannot be reached; the tokens are forgotten all the same (the caller may keep the
   * refresh token to revoke later).
   */
  async logout(): Promise<void> {
    const refreshToken = this.tokens?.refreshToken;
    this.tokens = null;
    this.ended = true;
    this.held.clear();
    if (!refreshToken) return;
    await revokeRefreshToken(this.baseUrl, refreshToken, this.timeoutMs);
  }

  /** A typed call to a path of the OpenAPI document, with the bearer token. */
  async call<P extends PathWith<M>, M extends Method>(
    method: M,
    path: P,
    options: CallOptions<P, M> = {},
  ): Promise<Answer<P, M>> {
    let url = path as string;
    for (const [name, value] of Object.entries((options.params ?? {}) as Record<string, string>)) {
      url = url.replace(`{${name}}`, encodeURIComponent(value));
    }
    const query = Object.entries((options.query ?? {}) as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    if (query) url += `?${query}`;
    return (await this.authorized(method, url, options.body, options.onceKey)) as Answer<P, M>;
  }

  private async authorized(method: Method, url: string, body: unknown, onceKey?: string): Promise<unknown> {
    let token = await this.accessToken();
    try {
      return await this.send(method, url, token, body, onceKey);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw this.checkEnded(err);
      if (err.code !== 'TOKEN_EXPIRED') throw this.end(err);
      // Another call may have renewed the token while this one was on the way: use that one.
      if (this.tokens?.accessToken === token) await this.refresh();
      token = await this.accessToken();
      try {
        return await this.send(method, url, token, body, onceKey);
      } catch (again) {
        if (again instanceof ApiError && again.status === 401) throw this.end(again);
        throw this.checkEnded(again);
      }
    }
  }

  /**
   * A bearer token valid for a while yet (renewed first when it is about to expire): for every
   * request this client makes, and for the one it does not, the live event stream
   * (`live/events.ts`). Throws `SessionEndedError` when signed out.
   */
  async accessToken(): Promise<string> {
    const tokens = this.tokens;
    if (!tokens || this.ended) throw new SessionEndedError(401, 'UNAUTHENTICATED', 'not signed in');
    if (tokens.accessToken && this.now() < tokens.accessExpiresAt - REFRESH_MARGIN_MS) return tokens.accessToken;
    await this.refresh();
    const renewed = this.tokens?.accessToken;
    if (!renewed) throw new SessionEndedError(401, 'UNAUTHENTICATED', 'not signed in');
    return renewed;
  }

  /**
   * Renews the token pair. Only one refresh is ever in flight: refresh tokens rotate, and
   * presenting an already used one makes the server revoke the whole session.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const refreshToken = this.tokens?.refreshToken;
    if (!refreshToken || this.ended) throw new SessionEndedError(401, 'UNAUTHENTICATED', 'not signed in');
    let pair: TokenPair;
    try {
      pair = (await this.send('post', '/api/mobile/refresh', null, { refreshToken })) as TokenPair;
    } catch (err) {
      // Offline: keep the refresh token (it was not used up) and try again later.
      if (err instanceof ApiError && err.status === 401) throw this.end(err);
      throw this.checkEnded(err);
    }
    await this.accept(pair);
  }

  private async accept(pair: TokenPair): Promise<void> {
    this.tokens = {
      accessToken: pair.accessToken,
      accessExpiresAt: this.now() + pair.expiresIn * 1000,
      refreshToken: pair.refreshToken,
    };
    await this.hooks.onTokens?.(this.tokens, pair.user);
  }

  /** A suspended account or tenant cannot act at all: treat it as the end of the session. */
  private checkEnded(err: unknown): unknown {
    if (err instanceof ApiError && err.code === 'ACCOUNT_SUSPENDED') return this.end(err);
    return err;
  }

  private end(err: ApiError): SessionEndedError {
    const ended = err instanceof SessionEndedError ? err : new SessionEndedError(err.status, err.code, err.message);
    if (!this.ended) {
      this.ended = true;
      this.tokens = null;
      this.held.clear();
      this.hooks.onSessionEnded?.(ended);
    }
    return ended;
  }

  private send(method: Method, url: string, token: string | null, body: unknown, onceKey?: string): Promise<unknown> {
    const held = method === 'get' && token ? this.held : undefined;
    return request(this.baseUrl + url, method, token, body, this.timeoutMs, onceKey, held);
  }
}

/** Revokes a refresh token's session (sign-out, or a sign-out that could not reach the server). */
export async function revokeRefreshToken(baseUrl: string, refreshToken: string, timeoutMs = 15_000): Promise<void> {
  await request(`${normaliseServerUrl(baseUrl)}/api/mobile/logout`, 'post', null, { refreshToken }, timeoutMs);
}

async function request(
  url: string,
  method: Method,
  token: string | null,
  body: unknown,
  timeoutMs: number,
  onceKey?: string,
  held?: Map<string, Held>,
): Promise<unknown> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (onceKey) headers['Idempotency-Key'] = onceKey;
  const kept = held?.get(url);
  if (kept) headers['If-None-Match'] = kept.tag;
  const init: RequestInit = { method: method.toUpperCase(), headers };
  if (method === 'post' || method === 'put' || method === 'patch') {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  init.signal = abort.signal;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, init);
    text = await response.text();
  } catch (err) {
    throw new OfflineError(err);
  } finally {
    clearTimeout(timer);
  }
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (held && kept && response.status === 304) {
    // Unchanged: the answer held, now the one read last.
    held.delete(url);
    held.set(url, kept);
    return kept.value;
  }
  if (response.ok) {
    if (held) keep(held, url, response.headers?.get('etag'), json);
    return json;
  }
  const detail = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (detail && typeof detail.code === 'string') {
    throw new ApiError(response.status, detail.code, typeof detail.message === 'string' ? detail.message : detail.code);
  }
  // Not the server's JSON error (a proxy, a captive portal): keep the status for the message.
  throw new ApiError(response.status, `HTTP_${response.status}`, text.slice(0, 200) || response.statusText);
}

/** Keeps an answer with its tag (an untagged answer lets go of what was held for the path). */
function keep(held: Map<string, Held>, url: string, tag: string | null | undefined, value: unknown) {
  held.delete(url);
  if (!tag) return;
  held.set(url, { tag, value });
  for (const oldest of held.keys()) {
    if (held.size <= MOST_HELD) break;
    held.delete(oldest);
  }
}
