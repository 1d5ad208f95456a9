import { fireEvent, screen, waitFor } from '@testing-library/react-native';

import { KEYS, memoryStore } from '../src/storage';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { ADMIN, BASE, KARIM, error, idle } from '../test/fakeServer';

function freshPhone(prefs: Record<string, string> = {}) {
  return { secure: memoryStore(), prefs: memoryStore({ [KEYS.language]: 'en', ...prefs }) };
}

async function signIn(server: string, username: string, password: string) {
  fireEvent.changeText(await screen.findByTestId('login-server'), server);
  fireEvent.changeText(screen.getByTestId('login-username'), username);
  fireEvent.changeText(screen.getByTestId('login-password'), password);
  fireEvent.press(screen.getByTestId('login-submit'));
}

describe('sign in', () => {
  test('signs in with the typed server address; remembers it; keeps the refresh token in the secure store only', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    const phone = freshPhone();
    renderApp(phone);
    await signIn('pump.test:8080/', 'karim', 'karim-password');
    expect(await screen.findByText('IDLE')).toBeTruthy();
    expect(server.calls[0]!.path).toBe('/api/mobile/login');
    expect(server.fetch.mock.calls[0]![0]).toBe(`${BASE}/api/mobile/login`);
    expect(server.last('POST /api/mobile/login')!.body).toMatchObject({ username: 'karim', deviceName: expect.stringContaining('PumpPilot app') });
    expect(await phone.prefs.get(KEYS.serverUrl)).toBe(BASE);
    expect(await phone.secure.get(KEYS.refreshToken)).toBe('r_refresh_1');
    expect([...phone.prefs.data.values()].some((v) => v.includes('r_refresh'))).toBe(false);
  });

  test('asks for what is missing, and shows a wrong password in words', async () => {
    newServer();
    renderApp(freshPhone());
    fireEvent.press(await screen.findByTestId('login-submit'));
    expect(await screen.findByText('Enter the server address.')).toBeTruthy();
    await signIn(BASE, 'karim', 'wrong');
    expect(await screen.findByText('Wrong username or password.')).toBeTruthy();
  });

  test('an unreachable server is a message', async () => {
    const { server } = newServer();
    server.offline = true;
    renderApp(freshPhone());
    await signIn('10.0.0.1:8080', 'karim', 'karim-password');
    expect(await screen.findByText(/Nothing answers at this address/)).toBeTruthy();
  });

  test('the sign-in form is prefilled with the remembered server and username', async () => {
    newServer();
    renderApp(freshPhone({ [KEYS.serverUrl]: BASE, [KEYS.lastUsername]: 'karim' }));
    await waitFor(() => expect(screen.getByTestId('login-server').props.value).toBe(BASE));
    expect(screen.getByTestId('login-username').props.value).toBe('karim');
  });

  test('the sign-in screen switches to Bangla', async () => {
    newServer();
    renderApp(freshPhone());
    fireEvent.press(await screen.findByTestId('language'));
    expect(await screen.findByText('সার্ভারের ঠিকানা')).toBeTruthy();
    expect(screen.getByText('সাইন ইন করুন')).toBeTruthy();
  });
});

describe('staying signed in', () => {
  test('after a restart: one refresh, even when a screen asks three things at once', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    server.on('GET /api/queue', sessions.authed({ body: { active: null, waiting: [] } }));
    server.on('GET /api/admin/devices', sessions.authed({ body: [] }));
    const phone = signedInStorage(sessions, ADMIN);
    const stored = await phone.secure.get(KEYS.refreshToken);
    renderApp(phone);
    expect(await screen.findByText('No device is registered yet. Register the one at the pump below.')).toBeTruthy();
    expect(server.count('POST /api/mobile/refresh')).toBe(1);
    expect(server.last('POST /api/mobile/refresh')!.body).toEqual({ refreshToken: stored });
    // The rotated token is stored at once, so the next start presents the new one.
    await waitFor(async () => expect(await phone.secure.get(KEYS.refreshToken)).not.toBe(stored));
    expect(sessions.revoked(stored!)).toBe(false);
  });

  test('an expired access token is renewed on the 401 and the screen never notices', async () => {
    const { server, sessions } = newServer();
    let calls = 0;
    server.on(
      'GET /api/motor/status',
      sessions.authed(() => {
        calls++;
        return { body: idle() };
      }),
    );
    renderApp(signedInStorage(sessions, KARIM));
    await screen.findByText('IDLE');
    sessions.expireAll();
    server.on('POST /api/motor/start', sessions.authed({ body: { id: 'e1', userId: KARIM.id, userName: KARIM.name, adminId: 'a1', status: 'RUNNING', remainingSeconds: 1800 } }));
    fireEvent.press(screen.getByText('START'));
    expect(await screen.findByText('STOP')).toBeTruthy();
    expect(server.count('POST /api/mobile/refresh')).toBe(2); // one at start-up, one on the 401
    expect(server.calls.filter((c) => c.path === '/api/motor/start').map((c) => c.token)).toEqual(['m_access_2', 'm_access_3']);
    expect(calls).toBeGreaterThan(0);
  });

  test('a revoked session goes back to sign-in with a notice and forgets the token', async () => {
    const { server, sessions } = newServer();
    server.on('POST /api/mobile/refresh', error(401, 'UNAUTHENTICATED'));
    const phone = signedInStorage(sessions, KARIM);
    renderApp(phone);
    expect(await screen.findByText('You were signed out. Please sign in again.')).toBeTruthy();
    expect(await phone.secure.get(KEYS.refreshToken)).toBeNull();
    expect(await phone.prefs.get(KEYS.user)).toBeNull();
  });

  test('a suspended account is told so', async () => {
    const { server, sessions } = newServer();
    server.on('POST /api/mobile/refresh', error(403, 'ACCOUNT_SUSPENDED'));
    renderApp(signedInStorage(sessions, KARIM));
    expect(await screen.findByText('This account is suspended. Talk to your pump owner.')).toBeTruthy();
  });
});

describe('sign out', () => {
  test('revokes the session on the server and forgets the token', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    const phone = signedInStorage(sessions, KARIM);
    renderApp(phone);
    await screen.findByText('IDLE');
    const token = await phone.secure.get(KEYS.refreshToken);
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByTestId('login')).toBeTruthy();
    expect(server.last('POST /api/mobile/logout')!.body).toEqual({ refreshToken: token });
    expect(sessions.revoked(token!)).toBe(true);
    expect(await phone.secure.get(KEYS.refreshToken)).toBeNull();
    expect(screen.getByTestId('login-server').props.value).toBe(BASE);
  });

  test('takes this phone’s push token out of the account first, then revokes the session', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    server.on('DELETE /api/alerts/push-tokens/{token}', sessions.authed({ body: {} }));
    const phone = signedInStorage(sessions, KARIM, { [KEYS.pushToken]: 'ExponentPushToken[karim-phone]' });
    renderApp(phone);
    await screen.findByText('IDLE');
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByTestId('login')).toBeTruthy();
    const asked = server.calls.map((c) => `${c.method} ${c.path}`);
    const forgot = asked.indexOf('DELETE /api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D');
    expect(forgot).toBeGreaterThanOrEqual(0);
    expect(forgot).toBeLessThan(asked.indexOf('POST /api/mobile/logout'));
    expect(sessions.revoked(server.last('POST /api/mobile/logout')!.body.refreshToken)).toBe(true);
    expect(await phone.prefs.get(KEYS.pushToken)).toBeNull();
  });

  test('offline with a push token: it is taken out at the next chance, then the session ends', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    const forgotten: string[] = [];
    server.on(
      'DELETE /api/alerts/push-tokens/{token}',
      sessions.authed((req) => {
        forgotten.push(req.path);
        return { body: {} };
      }),
    );
    const phone = signedInStorage(sessions, KARIM, { [KEYS.pushToken]: 'ExponentPushToken[karim-phone]' });
    const view = renderApp(phone);
    await screen.findByText('IDLE');
    server.offline = true;
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByText('Signed out on this phone. The server will be told when it can be reached.')).toBeTruthy();
    const pending = JSON.parse((await phone.secure.get(KEYS.revokeLater))!);
    expect(pending.pushToken).toBe('ExponentPushToken[karim-phone]');
    expect(await phone.prefs.get(KEYS.pushToken)).toBeNull();
    expect(forgotten).toEqual([]);
    view.unmount();
    server.offline = false;
    renderApp(phone);
    await waitFor(() => expect(forgotten).toEqual(['/api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D']));
    await waitFor(() => expect(sessions.revoked(pending.token)).toBe(true));
    await waitFor(async () => expect(await phone.secure.get(KEYS.revokeLater)).toBeNull());
  });

  test('offline: signs out here, and revokes on the server at the next chance', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    const phone = signedInStorage(sessions, KARIM);
    const view = renderApp(phone);
    await screen.findByText('IDLE');
    const token = await phone.secure.get(KEYS.refreshToken);
    server.offline = true;
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByText('Signed out on this phone. The server will be told when it can be reached.')).toBeTruthy();
    expect(await phone.secure.get(KEYS.refreshToken)).toBeNull();
    expect(JSON.parse((await phone.secure.get(KEYS.revokeLater))!)).toEqual({ url: BASE, token });
    // Next start, back online.
    view.unmount();
    server.offline = false;
    renderApp(phone);
    await waitFor(() => expect(sessions.revoked(token!)).toBe(true));
    await waitFor(async () => expect(await phone.secure.get(KEYS.revokeLater)).toBeNull());
  });
});
