import { fireEvent, screen, waitFor } from '@testing-library/react-native';
import * as Notifications from 'expo-notifications';

import type { AlertProfile, Notifications as List } from '../src/api/types';
import { KEYS, memoryStore } from '../src/storage';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { BASE, KARIM, idle } from '../test/fakeServer';

jest.mock('expo-notifications', () => ({
  getPermissionsAsync: jest.fn(),
  requestPermissionsAsync: jest.fn(),
  getExpoPushTokenAsync: jest.fn(),
  addPushTokenListener: jest.fn(),
}));
const mocked = Notifications as jest.Mocked<typeof Notifications>;

const EMPTY: AlertProfile = {
  phone: null,
  pendingPhone: null,
  phoneCode: null,
  pendingSince: null,
  droppedPhone: null,
  smsNumber: '+8809610000000',
  pushTokens: [],
  language: 'en',
  muted: [],
  quietHours: null,
};

const THIS_PHONE = 'ExponentPushToken[karim-phone]';
const REGISTER_THIS_PHONE = 'PUT /api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D';

/** Push is on: the phone lets PumpPilot notify, and Expo gives it `token`. */
function pushAllowed(token = THIS_PHONE) {
  mocked.getPermissionsAsync.mockResolvedValue({ granted: true, canAskAgain: true } as never);
  mocked.getExpoPushTokenAsync.mockResolvedValue({ type: 'expo', data: token });
}

/**
 * A farmer with two notifications (one unread) and an alert profile kept by the fake server, signed
 * in on this phone already (or, `signedIn: false`, a phone that signs in afresh).
 */
function farmerWithAlerts({ signedIn = true, pushTokens = [] as string[] } = {}) {
  const { server, sessions } = newServer();
  let profile: AlertProfile = { ...EMPTY, pushTokens };
  let list: List = {
    unread: 1,
    notifications: [
      { id: 'n2', kind: 'RUN_HELD', at: '2026-01-01T06:00:00Z', title: 'Run on hold', text: 'Your run is on hold: load shedding.', read: false },
      { id: 'n1', kind: 'RUN_STARTED', at: '2026-01-01T05:00:00Z', title: 'Your turn', text: 'Your turn came: the pump is starting for you.', read: true },
    ],
  };
  server.on('GET /api/motor/status', sessions.authed(() => ({ body: idle() })));
  server.on('GET /api/notifications', sessions.authed(() => ({ body: list })));
  server.on(
    'POST /api/notifications/read',
    sessions.authed(() => {
      list = { unread: 0, notifications: list.notifications.map((n) => ({ ...n, read: true })) };
      return { body: list };
    }),
  );
  server.on('GET /api/alerts/profile', sessions.authed(() => ({ body: profile })));
  server.on(
    'PUT /api/alerts/profile',
    sessions.authed((req) => {
      // As the server does: a new number waits, with a code, until texted from that phone.
      const wanted = (req.body as AlertProfile).phone ?? null;
      const waits = wanted !== null && wanted !== profile.phone && wanted !== profile.pendingPhone;
      profile = {
        ...(req.body as AlertProfile),
        droppedPhone: waits || wanted === null ? null : profile.droppedPhone,
        phone: wanted === null ? null : profile.phone,
        pendingPhone: wanted === null ? null : waits ? wanted : profile.pendingPhone,
        phoneCode: wanted === null ? null : waits ? '482106' : profile.phoneCode,
        pendingSince: wanted === null ? null : waits ? '2026-01-01T06:00:00Z' : profile.pendingSince,
        smsNumber: EMPTY.smsNumber,
      };
      return { body: profile };
    }),
  );
  server.on(
    'PUT /api/alerts/push-tokens/{token}',
    sessions.authed((req) => {
      // As the server does: the token joins the profile, last (it takes this session).
      const token = decodeURIComponent(req.path.split('/').pop()!);
      profile = { ...profile, pushTokens: [...profile.pushTokens.filter((t) => t !== token), token] };
      return { body: profile };
    }),
  );
  server.on('DELETE /api/alerts/push-tokens/{token}', sessions.authed({ body: EMPTY }));
  const phone = signedIn
    ? signedInStorage(sessions, KARIM)
    : { secure: memoryStore(), prefs: memoryStore({ [KEYS.language]: 'en' }) };
  const view = renderApp(phone);
  return {
    server,
    phone,
    view,
    profile: () => profile,
    /** As the code texted from `number`, waiting, confirms it. */
    confirm: (number: string) => {
      profile = { ...profile, phone: number, pendingPhone: null, phoneCode: null, pendingSince: null };
    },
    /** As five wrong codes texted from `number`, waiting, leave it. */
    drop: (number: string) => {
      profile = { ...profile, droppedPhone: number, pendingPhone: null, phoneCode: null, pendingSince: null };
    },
  };
}

async function signIn() {
  fireEvent.changeText(await screen.findByTestId('login-server'), BASE);
  fireEvent.changeText(screen.getByTestId('login-username'), 'karim');
  fireEvent.changeText(screen.getByTestId('login-password'), 'karim-password');
  fireEvent.press(screen.getByTestId('login-submit'));
  await screen.findByText('IDLE');
}

async function openAlerts() {
  await screen.findByText('IDLE');
  fireEvent.press(await screen.findByTestId('tab-alerts'));
}

describe('alerts', () => {
  beforeEach(() => {
    jest.clearAllMocks();
    // Push is off until a test turns it on.
    mocked.getPermissionsAsync.mockResolvedValue({ granted: false, canAskAgain: true } as never);
    mocked.addPushTokenListener.mockReturnValue({ remove: jest.fn() } as never);
  });

  test('the bell lists notifications newest first, counts the unread and marks them read', async () => {
    const { server } = farmerWithAlerts();
    await openAlerts();
    expect(await screen.findByText('● Run on hold')).toBeTruthy();
    expect(screen.getByText('Your run is on hold: load shedding.')).toBeTruthy();
    expect(screen.getByText('Your turn')).toBeTruthy();
    expect(screen.getByTestId('alerts-unread')).toHaveTextContent('1 unread');
    fireEvent.press(screen.getByTestId('alerts-read'));
    await waitFor(() => expect(screen.queryByTestId('alerts-unread')).toBeNull());
    expect(screen.getByText('Run on hold')).toBeTruthy();
    expect(server.last('POST /api/notifications/read')!.body).toEqual({ ids: null });
    // Written in the screen's language, whatever the language of the person's SMS.
    expect(server.last('GET /api/notifications')!.query.get('language')).toBe('en');
  });

  test('push registration asks once, then registers this phone’s Expo token with the session', async () => {
    mocked.requestPermissionsAsync.mockResolvedValue({ granted: true, canAskAgain: true } as never);
    mocked.getExpoPushTokenAsync.mockResolvedValue({ type: 'expo', data: THIS_PHONE });
    const { server, profile } = farmerWithAlerts();
    await openAlerts();
    fireEvent.press(await screen.findByTestId('alerts-push'));
    expect(await screen.findByText('This phone gets notifications.')).toBeTruthy();
    expect(mocked.requestPermissionsAsync).toHaveBeenCalledTimes(1);
    expect(server.count(REGISTER_THIS_PHONE)).toBe(1);
    expect(server.count('PUT /api/alerts/profile')).toBe(0);
    expect(profile().pushTokens).toEqual([THIS_PHONE]);
  });

  test('the token registered is remembered on the phone: signing out takes it out of the account', async () => {
    pushAllowed();
    const { server, phone } = farmerWithAlerts();
    await openAlerts();
    fireEvent.press(await screen.findByTestId('alerts-push'));
    expect(await screen.findByText('This phone gets notifications.')).toBeTruthy();
    expect(await phone.prefs.get(KEYS.pushToken)).toBe('ExponentPushToken[karim-phone]');
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByTestId('login')).toBeTruthy();
    expect(server.count('DELETE /api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D')).toBe(1);
  });

  test('after every sign-in, push on, the phone registers its token with the new session, even when the profile lists it', async () => {
    pushAllowed();
    // The profile lists the token already: an old session of this phone's lapsed without signing out.
    const { server, phone, profile } = farmerWithAlerts({ signedIn: false, pushTokens: [THIS_PHONE] });
    await signIn();
    await waitFor(() => expect(server.count(REGISTER_THIS_PHONE)).toBe(1));
    const login = server.calls.findIndex((c) => c.path === '/api/mobile/login');
    const registered = server.calls.findIndex((c) => `${c.method} ${c.path}` === REGISTER_THIS_PHONE);
    expect(registered).toBeGreaterThan(login);
    expect(server.calls[registered]!.token).toMatch(/^m_access_/);
    expect(server.count('PUT /api/alerts/profile')).toBe(0);
    expect(mocked.requestPermissionsAsync).not.toHaveBeenCalled();
    expect(profile().pushTokens).toEqual([THIS_PHONE]);
    // Kept on the phone, for the sign-out to take it out of the account.
    await waitFor(async () => expect(await phone.prefs.get(KEYS.pushToken)).toBe(THIS_PHONE));

    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByTestId('login')).toBeTruthy();
    expect(server.count('DELETE /api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D')).toBe(1);
    await signIn();
    await waitFor(() => expect(server.count(REGISTER_THIS_PHONE)).toBe(2));
    expect(server.last(REGISTER_THIS_PHONE)!.token).not.toBe(server.calls[registered]!.token);
  });

  test('push off: a sign-in asks nothing and registers nothing', async () => {
    const { server } = farmerWithAlerts({ signedIn: false });
    await signIn();
    await waitFor(() => expect(mocked.getPermissionsAsync).toHaveBeenCalled());
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mocked.requestPermissionsAsync).not.toHaveBeenCalled();
    expect(mocked.getExpoPushTokenAsync).not.toHaveBeenCalled();
    expect(server.calls.filter((c) => c.path.startsWith('/api/alerts/push-tokens/'))).toEqual([]);
  });

  test('offline when it signs in, the phone says nothing and registers its token at the next start', async () => {
    pushAllowed();
    const { server, phone, view } = farmerWithAlerts({ signedIn: false, pushTokens: [THIS_PHONE] });
    const register = server.handler('PUT /api/alerts/push-tokens/{token}');
    let unreachable = true;
    server.on('PUT /api/alerts/push-tokens/{token}', (req) => {
      if (unreachable) throw new TypeError('Network request failed');
      return register(req);
    });
    await signIn();
    await waitFor(() => expect(server.count(REGISTER_THIS_PHONE)).toBe(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await phone.prefs.get(KEYS.pushToken)).toBeNull();
    expect(screen.queryByTestId('alerts-error')).toBeNull();
    expect(screen.getByText('IDLE')).toBeTruthy();

    view.unmount();
    unreachable = false;
    renderApp(phone);
    await waitFor(() => expect(server.count(REGISTER_THIS_PHONE)).toBe(2));
    await waitFor(async () => expect(await phone.prefs.get(KEYS.pushToken)).toBe(THIS_PHONE));
  });

  test('a new token from Expo is registered at once with the session', async () => {
    pushAllowed();
    const { server, phone } = farmerWithAlerts();
    await screen.findByText('IDLE');
    await waitFor(() => expect(server.count(REGISTER_THIS_PHONE)).toBe(1));
    expect(mocked.addPushTokenListener).toHaveBeenCalled();
    const changed = mocked.addPushTokenListener.mock.calls.at(-1)![0];
    mocked.getExpoPushTokenAsync.mockResolvedValue({ type: 'expo', data: 'ExponentPushToken[renewed]' });
    changed({ type: 'ios', data: 'device-token' });
    await waitFor(() => expect(server.count('PUT /api/alerts/push-tokens/ExponentPushToken%5Brenewed%5D')).toBe(1));
    await waitFor(async () => expect(await phone.prefs.get(KEYS.pushToken)).toBe('ExponentPushToken[renewed]'));
  });

  test('a phone that refuses notifications says so and registers nothing', async () => {
    mocked.getPermissionsAsync.mockResolvedValue({ granted: false, canAskAgain: false } as never);
    const { server } = farmerWithAlerts();
    await openAlerts();
    fireEvent.press(await screen.findByTestId('alerts-push'));
    expect(await screen.findByText('Notifications are turned off for PumpPilot in this phone’s settings.')).toBeTruthy();
    expect(mocked.requestPermissionsAsync).not.toHaveBeenCalled();
    expect(server.count('PUT /api/alerts/profile')).toBe(0);
  });

  test('the SMS phone is saved with the app’s language and waits for the code texted from it', async () => {
    const { server } = farmerWithAlerts();
    await openAlerts();
    expect(await screen.findByTestId('alerts-phone-confirmed')).toHaveTextContent(/^No phone confirmed yet/);
    fireEvent.changeText(await screen.findByTestId('alerts-phone'), ' +8801711000001 ');
    fireEvent.press(screen.getByTestId('alerts-save'));
    expect(await screen.findByText('Saved.')).toBeTruthy();
    expect(server.last('PUT /api/alerts/profile')!.body).toEqual({ ...EMPTY, phone: '+8801711000001', language: 'en' });
    expect(await screen.findByTestId('alerts-phone-send')).toHaveTextContent(
      'From the phone +8801711000001, send 482106 to +8809610000000. The code works for 24 hours.',
    );
    expect(screen.getByText('+8801711000001 is waiting to be confirmed: it gets nothing until then.')).toBeTruthy();
    expect(screen.getByTestId('alerts-phone-confirmed')).toHaveTextContent(/^No phone confirmed yet/);
  });

  test('a farmer’s confirmed phone says what they may text from it', async () => {
    const { confirm } = farmerWithAlerts();
    confirm('+8801711000001');
    await openAlerts();
    expect(await screen.findByTestId('alerts-phone-confirmed')).toHaveTextContent(/^Confirmed phone: \+8801711000001\./);
    const commands = screen.getByTestId('alerts-phone-commands');
    expect(commands).toHaveTextContent(/^From it, text \+8809610000000:/);
    expect(commands).toHaveTextContent(/START — pump until you stop; START 30 for 30 min/);
    expect(commands).toHaveTextContent(/REQ 60 — ask the owner for 60 min$/);
  });

  test('a number dropped after too many wrong codes says why its code is gone, until it is set again', async () => {
    const { drop } = farmerWithAlerts();
    drop('+8801711000001');
    await openAlerts();
    expect(await screen.findByTestId('alerts-phone-dropped')).toHaveTextContent(
      'Too many wrong codes were texted from +8801711000001: it was dropped. Save the number again for a new code.',
    );
    expect(screen.queryByTestId('alerts-phone-send')).toBeNull();
    fireEvent.changeText(screen.getByTestId('alerts-phone'), '+8801711000001');
    fireEvent.press(screen.getByTestId('alerts-save'));
    expect(await screen.findByTestId('alerts-phone-send')).toHaveTextContent(/send 482106/);
    expect(screen.queryByTestId('alerts-phone-dropped')).toBeNull();
  });
});
