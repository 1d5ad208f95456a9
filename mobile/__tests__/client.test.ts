import { ApiClient, ApiError, MOST_HELD, OfflineError, REFRESH_MARGIN_MS, SessionEndedError, normaliseServerUrl } from '../src/api/client';
import { endpoints } from '../src/api/endpoints';
import { BASE, FakeServer, KARIM, error, idle, withSessions } from '../test/fakeServer';

function setup() {
  const server = new FakeServer().install();
  const sessions = withSessions(server, [{ user: KARIM, password: 'karim-password' }]);
  server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
  let clock = 1_000_000;
  const onTokens = jest.fn();
  const onSessionEnded = jest.fn();
  const client = new ApiClient({ baseUrl: BASE, now: () => clock, hooks: { onTokens, onSessionEnded } });
  return {
    server,
    sessions,
    client,
    api: endpoints(client),
    onTokens,
    onSessionEnded,
    advance: (ms: number) => (clock += ms),
  };
}

/** A promise with its resolve handle, to hold an answer back until the test lets it go. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('ApiClient', () => {
  test('signs in, keeps the tokens and sends the access token as a bearer', async () => {
    const { client, api, server, onTokens } = setup();
    const user = await client.login('karim', 'karim-password', 'test phone');
    expect(user.role).toBe('user');
    expect(server.last('POST /api/mobile/login')!.body).toEqual({ username: 'karim', password: 'karim-password', deviceName: 'test phone' });
    expect(onTokens).toHaveBeenCalledWith(expect.objectContaining({ refreshToken: 'r_refresh_1' }), KARIM);
    await api.status();
    expect(server.last('GET /api/motor/status')!.headers.authorization).toBe('Bearer m_access_1');
  });

  test('wrong password is INVALID_CREDENTIALS, not a crash', async () => {
    const { client } = setup();
    await expect(client.login('karim', 'nope')).rejects.toMatchObject({ status: 401, code: 'INVALID_CREDENTIALS' });
  });

  test('401 TOKEN_EXPIRED: refreshes once and repeats the request with the new token', async () => {
    const { client, api, server, sessions } = setup();
    await client.login('karim', 'karim-password');
    sessions.expireAll();
    await expect(api.status()).resolves.toEqual(idle());
    expect(server.count('POST /api/mobile/refresh')).toBe(1);
    expect(server.last('POST /api/mobile/refresh')!.body).toEqual({ refreshToken: 'r_refresh_1' });
    const tokens = server.calls.filter((c) => c.path === '/api/motor/status').map((c) => c.token);
    expect(tokens).toEqual(['m_access_1', 'm_access_2']);
  });

  test('single flight: many requests that meet an expired token cause exactly one refresh', async () => {
    const { client, api, server, sessions } = setup();
    await client.login('karim', 'karim-password');
    sessions.expireAll();
    // Hold the refresh answer back so every request is waiting on it at once.
    const gate = deferred();
    const realRefresh = server.handler('POST /api/mobile/refresh');
    server.on('POST /api/mobile/refresh', async (req) => {
      await gate.promise;
      return realRefresh(req);
    });
    const all = Promise.all([api.status(), api.status(), api.status(), api.status()]);
    await new Promise((r) => setTimeout(r, 10));
    gate.resolve();
    await expect(all).resolves.toHaveLength(4);
    expect(server.count('POST /api/mobile/refresh')).toBe(1);
    // The rotated token was never presented twice, so the session is alive.
    expect(sessions.revoked('r_refresh_1')).toBe(false);
    await expect(api.status()).resolves.toEqual(idle());
  });

  test('a request that comes back 401 after another one already refreshed just uses the new token', async () => {
    const { client, api, server, sessions } = setup();
    await client.login('karim', 'karim-password');
    sessions.expireAll();
    const slow = deferred();
    let first = true;
    // The first status request is answered late, after the second one has refreshed.
    const realStatus = server.handler('GET /api/motor/status');
    server.on('GET /api/motor/status', async (req) => {
      if (first) {
        first = false;
        await slow.promise;
      }
      return realStatus(req);
    });
    const late = api.status();
    await api.status(); // 401 → refresh → ok
    slow.resolve();
    await late; // 401 with the old token → no second refresh
    expect(server.count('POST /api/mobile/refresh')).toBe(1);
  });

  test('renews the access token shortly before it expires, without a 401 round trip', async () => {
    const { client, api, server, advance } = setup();
    await client.login('karim', 'karim-password');
    advance(900_000 - REFRESH_MARGIN_MS + 1);
    await Promise.all([api.status(), api.status()]);
    expect(server.count('POST /api/mobile/refresh')).toBe(1);
    expect(server.calls.filter((c) => c.path === '/api/motor/status').map((c) => c.token)).toEqual(['m_access_2', 'm_access_2']);
  });

  test('a refused refresh ends the session once and says so', async () => {
    const { client, api, server, sessions, onSessionEnded } = setup();
    await client.login('karim', 'karim-password');
    sessions.expireAll();
    server.on('POST /api/mobile/refresh', error(401, 'UNAUTHENTICATED'));
    await expect(Promise.all([api.status(), api.status()])).rejects.toBeInstanceOf(SessionEndedError);
    expect(onSessionEnded).toHaveBeenCalledTimes(1);
    expect(client.signedIn).toBe(false);
    await expect(api.status()).rejects.toBeInstanceOf(SessionEndedError);
  });

  test('offline during a refresh keeps the refresh token for the next try', async () => {
    const { client, api, server, advance, onSessionEnded } = setup();
    await client.login('karim', 'karim-password');
    advance(900_000);
    server.offline = true;
    await expect(api.status()).rejects.toBeInstanceOf(OfflineError);
    expect(client.refreshToken).toBe('r_refresh_1');
    server.offline = false;
    await expect(api.status()).resolves.toEqual(idle());
    expect(server.calls.filter((c) => c.path === '/api/mobile/refresh').map((c) => c.body.refreshToken)).toEqual([
      'r_refresh_1',
      'r_refresh_1',
    ]);
    expect(onSessionEnded).not.toHaveBeenCalled();
  });

  test('403 FORBIDDEN is an ApiError with its code and keeps the session', async () => {
    const { client, api, server, onSessionEnded } = setup();
    await client.login('karim', 'karim-password');
    server.on('GET /api/admin/users', error(403, 'FORBIDDEN', 'this needs an admin'));
    const err = await api.users().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(onSessionEnded).not.toHaveBeenCalled();
  });

  test('ACCOUNT_SUSPENDED ends the session', async () => {
    const { client, api, server, onSessionEnded } = setup();
    await client.login('karim', 'karim-password');
    server.on('GET /api/motor/status', error(403, 'ACCOUNT_SUSPENDED'));
    await expect(api.status()).rejects.toMatchObject({ code: 'ACCOUNT_SUSPENDED' });
    expect(onSessionEnded).toHaveBeenCalledWith(expect.objectContaining({ code: 'ACCOUNT_SUSPENDED' }));
  });

  test('409 INSUFFICIENT_BALANCE carries its code', async () => {
    const { client, api, server } = setup();
    await client.login('karim', 'karim-password');
    server.on('POST /api/motor/start', error(409, 'INSUFFICIENT_BALANCE', 'no minutes left'));
    await expect(api.start()).rejects.toMatchObject({ status: 409, code: 'INSUFFICIENT_BALANCE' });
    expect(server.last('POST /api/motor/start')!.body).toEqual({ minutes: null });
  });

  test('no network is an OfflineError; a proxy page is an HTTP error', async () => {
    const { client, api, server } = setup();
    await client.login('karim', 'karim-password');
    server.offline = true;
    await expect(api.status()).rejects.toBeInstanceOf(OfflineError);
    server.offline = false;
    server.on('GET /api/queue', { status: 502, raw: '<html>Bad Gateway</html>' });
    await expect(api.queue()).rejects.toMatchObject({ status: 502, code: 'HTTP_502' });
  });

  test('path parameters and queries are filled in and encoded', async () => {
    const { client, api, server } = setup();
    await client.login('karim', 'karim-password');
    server.on('POST /api/admin/users/{id}/suspend', { body: KARIM });
    server.on('GET /api/admin/minute-requests', { body: [] });
    await api.suspend('a b');
    await api.minuteRequests('PENDING');
    expect(server.calls.some((c) => c.path === '/api/admin/users/a%20b/suspend')).toBe(true);
    expect(server.last('GET /api/admin/minute-requests')!.query.get('status')).toBe('PENDING');
  });

  test('a read again sends back the tag of the answer held, and an unchanged answer costs no body', async () => {
    const { client, api, server } = setup();
    await client.login('karim', 'karim-password');
    const first = await api.status();
    expect(server.last('GET /api/motor/status')!.headers['if-none-match']).toBeUndefined();
    const bytes = server.bodyBytes;

    const again = await api.status();
    const read = server.last('GET /api/motor/status')!;
    expect(read.headers['if-none-match']).toMatch(/^".+"$/);
    expect(read.answered).toBe(304);
    expect(again).toBe(first); // the very answer held: a screen given it has nothing to draw again
    expect(server.bodyBytes).toBe(bytes);

    // Changed on the server: read in full, and the new answer is the one held.
    server.on('GET /api/motor/status', { body: { ...idle(), unread: 1 } });
    const changed = await api.status();
    expect(server.last('GET /api/motor/status')!.answered).toBe(200);
    expect(changed).toEqual({ ...idle(), unread: 1 });
    expect(await api.status()).toBe(changed);
    expect(server.last('GET /api/motor/status')!.answered).toBe(304);

    // Writes hold nothing and send no tag.
    server.on('POST /api/motor/stop', { body: {} });
    await client.call('post', '/api/motor/stop');
    expect(server.last('POST /api/motor/stop')!.headers['if-none-match']).toBeUndefined();
  });

  test('held answers are forgotten when the session ends, and at most MOST_HELD are kept', async () => {
    const { client, api, server } = setup();
    await client.login('karim', 'karim-password');
    server.on('GET /api/admin/minute-requests', (req) => ({ body: [req.query.get('status')] }));
    for (let i = 0; i <= MOST_HELD; i++) await client.call('get', '/api/admin/minute-requests', { query: { status: `S${i}` } as never });
    // The first of MOST_HELD + 1 paths read has been let go; the last is still held.
    await client.call('get', '/api/admin/minute-requests', { query: { status: 'S0' } as never });
    expect(server.last('GET /api/admin/minute-requests')!.headers['if-none-match']).toBeUndefined();
    await client.call('get', '/api/admin/minute-requests', { query: { status: `S${MOST_HELD}` } as never });
    expect(server.last('GET /api/admin/minute-requests')!.answered).toBe(304);

    await api.status();
    await client.logout();
    await client.login('karim', 'karim-password');
    await api.status();
    expect(server.last('GET /api/motor/status')!.headers['if-none-match']).toBeUndefined();
  });

  test('logout revokes the session with the refresh token and forgets it', async () => {
    const { client, server, sessions } = setup();
    await client.login('karim', 'karim-password');
    await client.logout();
    expect(server.last('POST /api/mobile/logout')!.body).toEqual({ refreshToken: 'r_refresh_1' });
    expect(sessions.revoked('r_refresh_1')).toBe(true);
    expect(client.signedIn).toBe(false);
  });
});

test('normaliseServerUrl adds the scheme and drops trailing slashes', () => {
  expect(normaliseServerUrl(' 192.168.0.5:8080/ ')).toBe('http://192.168.0.5:8080');
  expect(normaliseServerUrl('https://pump.example.org//')).toBe('https://pump.example.org');
  expect(normaliseServerUrl('HTTP://x')).toBe('HTTP://x');
});
