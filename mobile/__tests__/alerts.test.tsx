import { fireEvent, screen, waitFor } from '@testing-library/react-native';
import * as Notifications from 'expo-notifications';

import type { AlertProfile, Notifications as List } from '../src/api/types';
import { KEYS } from '../src/storage';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { KARIM, idle } from '../test/fakeServer';

jest.mock('expo-notifications', () => ({
  getPermissionsAsync: jest.fn(),
  requestPermissionsAsync: jest.fn(),
  getExpoPushTokenAsync: jest.fn(),
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

/** A farmer with two notifications (one unread) and an alert profile kept by the fake server. */
function farmerWithAlerts() {
  const { server, sessions } = newServer();
  let profile: AlertProfile = { ...EMPTY };
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
  const phone = signedInStorage(sessions, KARIM);
  renderApp(phone);
  return {
    server,
    phone,
    profile: () => profile,
    /** As five wrong codes texted from `number`, waiting, leave it. */
    drop: (number: string) => {
      profile = { ...profile, droppedPhone: number, pendingPhone: null, phoneCode: null, pendingSince: null };
    },
  };
}

async function openAlerts() {
  await screen.findByText('IDLE');
  fireEvent.press(await screen.findByTestId('tab-alerts'));
}

describe('alerts', () => {
  beforeEach(() => jest.clearAllMocks());

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

  test('push registration asks once, then adds this phone’s Expo token to the profile', async () => {
    mocked.getPermissionsAsync.mockResolvedValue({ granted: false, canAskAgain: true } as never);
    mocked.requestPermissionsAsync.mockResolvedValue({ granted: true, canAskAgain: true } as never);
    mocked.getExpoPushTokenAsync.mockResolvedValue({ type: 'expo', data: 'ExponentPushToken[karim-phone]' });
    const { server, profile } = farmerWithAlerts();
    await openAlerts();
    fireEvent.press(await screen.findByTestId('alerts-push'));
    expect(await screen.findByText('This phone gets notifications.')).toBeTruthy();
    expect(mocked.requestPermissionsAsync).toHaveBeenCalledTimes(1);
    expect(server.last('PUT /api/alerts/profile')!.body).toEqual({ ...EMPTY, pushTokens: ['ExponentPushToken[karim-phone]'] });
    expect(profile().pushTokens).toEqual(['ExponentPushToken[karim-phone]']);
  });

  test('the token registered is remembered on the phone: signing out takes it out of the account', async () => {
    mocked.getPermissionsAsync.mockResolvedValue({ granted: true, canAskAgain: true } as never);
    mocked.getExpoPushTokenAsync.mockResolvedValue({ type: 'expo', data: 'ExponentPushToken[karim-phone]' });
    const { server, phone } = farmerWithAlerts();
    server.on('DELETE /api/alerts/push-tokens/{token}', { body: EMPTY });
    await openAlerts();
    fireEvent.press(await screen.findByTestId('alerts-push'));
    expect(await screen.findByText('This phone gets notifications.')).toBeTruthy();
    expect(await phone.prefs.get(KEYS.pushToken)).toBe('ExponentPushToken[karim-phone]');
    fireEvent.press(screen.getByTestId('sign-out'));
    expect(await screen.findByTestId('login')).toBeTruthy();
    expect(server.count('DELETE /api/alerts/push-tokens/ExponentPushToken%5Bkarim-phone%5D')).toBe(1);
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
