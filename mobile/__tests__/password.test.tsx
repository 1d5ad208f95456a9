import { fireEvent, screen, waitFor, within } from '@testing-library/react-native';

import type { AlertProfile, User } from '../src/api/types';
import { KEYS } from '../src/storage';
import { ACCOUNTS, newServer, renderApp, signedInStorage, type Sessions } from '../test/app';
import { KARIM, MASTER, error, idle, type FakeServer } from '../test/fakeServer';

const PROFILE: AlertProfile = {
  phone: null,
  pendingPhone: null,
  phoneCode: null,
  pendingSince: null,
  droppedPhone: null,
  smsNumber: null,
  pushTokens: [],
  language: 'en',
  muted: [],
  quietHours: null,
};

const NEW = 'paddy-field-2027';
const ROUTE = 'POST /api/auth/password';

/**
 * `POST /api/auth/password` as the server answers the signed-in `user`: the current password
 * checked, the new one 8 to 256 characters (code points), 204 and the password changed. `hold`
 * delays the answer until the test lets it go.
 */
function passwords(server: FakeServer, sessions: Sessions, user: User) {
  let password = ACCOUNTS.find((a) => a.user.id === user.id)!.password;
  let held: Promise<void> | null = null;
  let letGo = () => {};
  server.on(
    ROUTE,
    sessions.authed(async (req) => {
      if (held) await held;
      const length = [...(req.body.newPassword as string)].length;
      if (length < 8 || length > 256) return error(400, 'VALIDATION', 'newPassword: 8 to 256 characters');
      if (req.body.currentPassword !== password) return error(403, 'WRONG_PASSWORD', 'the current password is wrong');
      password = req.body.newPassword;
      return { status: 204 };
    }),
  );
  return {
    password: () => password,
    hold() {
      held = new Promise<void>((r) => (letGo = r));
    },
    release() {
      held = null;
      letGo();
    },
  };
}

function farmer(prefs: Record<string, string> = {}) {
  const { server, sessions } = newServer();
  server.on('GET /api/motor/status', sessions.authed(() => ({ body: idle() })));
  server.on('GET /api/notifications', sessions.authed({ body: { unread: 0, notifications: [] } }));
  server.on('GET /api/alerts/profile', sessions.authed({ body: PROFILE }));
  const fake = passwords(server, sessions, KARIM);
  renderApp(signedInStorage(sessions, KARIM, prefs));
  return { server, ...fake };
}

async function openCard() {
  fireEvent.press(await screen.findByTestId('tab-alerts'));
  // Folded at the top of the screen, behind its button.
  fireEvent.press(await screen.findByTestId('password-open'));
  return screen.findByTestId('password');
}

function type(current: string, next: string, again: string) {
  fireEvent.changeText(screen.getByTestId('password-current'), current);
  fireEvent.changeText(screen.getByTestId('password-new'), next);
  fireEvent.changeText(screen.getByTestId('password-again'), again);
}

const value = (testID: string) => screen.getByTestId(testID).props.value as string;

/** The test ids on the screen, top to bottom as laid out. */
function laidOut(): string[] {
  const ids: string[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    const { props, children } = node as { props?: { testID?: string }; children?: unknown };
    if (props?.testID) ids.push(props.testID);
    walk(children);
  };
  walk(screen.toJSON());
  return ids;
}

describe('changing one’s own password', () => {
  test('the card is on the Alerts screen, with three hidden fields and the rule under the new one', async () => {
    farmer();
    const card = await openCard();
    for (const id of ['password-current', 'password-new', 'password-again']) {
      expect(within(card).getByTestId(id).props.secureTextEntry).toBe(true);
    }
    expect(within(card).getByText('Current password')).toBeTruthy();
    expect(within(card).getByText('New password again')).toBeTruthy();
    expect(within(card).getByTestId('password-rule')).toHaveTextContent('At least 8 characters.');
  });

  test('it is folded at the top of the Alerts screen, above the notifications, and folds away again', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed(() => ({ body: idle() })));
    const many = Array.from({ length: 100 }, (_, i) => ({
      id: `n${i}`,
      kind: 'RUN_ENDED',
      at: '2026-01-01T06:00:00Z',
      title: 'Run ended',
      text: 'Your run ended.',
      read: true,
    }));
    server.on('GET /api/notifications', sessions.authed({ body: { unread: 0, notifications: many } }));
    server.on('GET /api/alerts/profile', sessions.authed({ body: PROFILE }));
    renderApp(signedInStorage(sessions, KARIM));
    fireEvent.press(await screen.findByTestId('tab-alerts'));
    await screen.findByTestId('notification-n0');
    const open = screen.getByTestId('password-open');
    expect(open).toHaveTextContent('Change password');
    expect(open).toBeCollapsed();
    expect(screen.queryByTestId('password')).toBeNull();
    // Before the first of a hundred notifications, in the order the screen is laid out.
    expect(laidOut().indexOf('password-open')).toBeGreaterThan(-1);
    expect(laidOut().indexOf('password-open')).toBeLessThan(laidOut().indexOf('notification-n0'));
    fireEvent.press(open);
    expect(screen.getByTestId('password-open')).toBeExpanded();
    expect(screen.getByTestId('password-open')).toHaveTextContent('Close the password form');
    expect(within(screen.getByTestId('password')).getByTestId('password-current')).toBeTruthy();
    expect(laidOut().indexOf('password-current')).toBeLessThan(laidOut().indexOf('notification-n0'));
    fireEvent.press(screen.getByTestId('password-open'));
    expect(screen.queryByTestId('password')).toBeNull();
  });

  test('sends the current and the new password, is busy meanwhile, then says so and empties the fields', async () => {
    const { server, hold, release, password } = farmer();
    await openCard();
    type('karim-password', NEW, NEW);
    hold();
    fireEvent.press(screen.getByTestId('password-send'));
    await waitFor(() => expect(server.count(ROUTE)).toBe(1));
    expect(screen.getByTestId('password-send')).toBeBusy();
    release();
    expect(await screen.findByTestId('password-success')).toHaveTextContent('Password changed. Other phones and browsers were signed out.');
    expect(server.last(ROUTE)!.body).toEqual({ currentPassword: 'karim-password', newPassword: NEW });
    expect(server.last(ROUTE)!.token).toMatch(/^m_access_/);
    expect(password()).toBe(NEW);
    expect(value('password-current')).toBe('');
    expect(value('password-new')).toBe('');
    expect(value('password-again')).toBe('');
    expect(screen.getByTestId('password-send')).not.toBeBusy();
    // This phone stays signed in; the password is in no message.
    expect(screen.queryByTestId('login')).toBeNull();
    expect(screen.queryByText(/karim-password|paddy-field/)).toBeNull();
  });

  test('two different new passwords are caught before anything is sent', async () => {
    const { server } = farmer();
    await openCard();
    type('karim-password', NEW, 'paddy-field-2028');
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('The two new passwords are not the same. Type them again.');
    expect(server.count(ROUTE)).toBe(0);
    // Hidden as they are, both new ones are typed again; the current one stays.
    expect(value('password-current')).toBe('karim-password');
    expect(value('password-new')).toBe('');
    expect(value('password-again')).toBe('');
  });

  test('no current password, or a new one under 8 characters as the server counts them, is caught before sending', async () => {
    const { server } = farmer();
    await openCard();
    type('', NEW, NEW);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('Type your current password.');
    type('karim-password', 'short', 'short');
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('The new password is too short: at least 8 characters.');
    // Five characters, though ten UTF-16 units: the server counts characters.
    type('karim-password', '🌾🌾🌾🌾🌾', '🌾🌾🌾🌾🌾');
    fireEvent.press(screen.getByTestId('password-send'));
    await waitFor(() => expect(screen.getByTestId('password-new').props.value).toBe('🌾🌾🌾🌾🌾'));
    expect(screen.getByTestId('password-error')).toHaveTextContent('The new password is too short: at least 8 characters.');
    expect(server.count(ROUTE)).toBe(0);
  });

  test('a wrong current password says so; the new ones stay, the current one is typed again', async () => {
    const { server, password } = farmer();
    await openCard();
    type('not-my-password', NEW, NEW);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('The current password is wrong. Nothing was changed.');
    expect(server.count(ROUTE)).toBe(1);
    expect(password()).toBe('karim-password');
    expect(value('password-current')).toBe('');
    expect(value('password-new')).toBe(NEW);
    expect(value('password-again')).toBe(NEW);
    // A refusal of the password is not the end of the session.
    expect(screen.queryByTestId('login')).toBeNull();
    expect(screen.queryByText(/not-my-password|paddy-field/)).toBeNull();
    // Typed again, it goes through.
    fireEvent.changeText(screen.getByTestId('password-current'), 'karim-password');
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-success')).toBeTruthy();
    expect(password()).toBe(NEW);
  });

  test('the server’s other refusals are put in words, fields kept: too many tries, a rule broken', async () => {
    const { server } = farmer();
    await openCard();
    const ours = server.handler(ROUTE);
    server.on(ROUTE, error(429, 'RATE_LIMITED', 'too many sign-in attempts'));
    type('karim-password', NEW, NEW);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('Too many tries. Wait a few minutes and try again.');
    expect(value('password-current')).toBe('karim-password');
    expect(value('password-new')).toBe(NEW);
    // Longer than the field lets a person type (pasted): the server's rule, in words.
    server.on(ROUTE, ours);
    const long = 'x'.repeat(257);
    type('karim-password', long, long);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent(
      'Please check what you entered. New password: at least 8 characters.',
    );
    expect(value('password-new')).toBe(long);
  });

  test('in Bangla: the rule, a wrong current password and the change, in Bangla words', async () => {
    const { server } = farmer({ [KEYS.language]: 'bn' });
    const card = await openCard();
    expect(screen.getByTestId('password-open')).toHaveTextContent('পাসওয়ার্ডের ফর্ম লুকান');
    expect(within(card).getByTestId('password-rule')).toHaveTextContent('অন্তত ৮ অক্ষর।');
    expect(within(card).getByText('বর্তমান পাসওয়ার্ড')).toBeTruthy();
    type('not-my-password', NEW, NEW);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-error')).toHaveTextContent('বর্তমান পাসওয়ার্ড ভুল। কিছুই বদলানো হয়নি।');
    fireEvent.changeText(screen.getByTestId('password-current'), 'karim-password');
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-success')).toHaveTextContent(
      'পাসওয়ার্ড বদলানো হয়েছে। অন্য ফোন ও ব্রাউজার থেকে সাইন আউট করা হয়েছে।',
    );
    expect(server.last(ROUTE)!.body).toEqual({ currentPassword: 'karim-password', newPassword: NEW });
  });

  test('the master, who has no Alerts tab, changes theirs at the top of their screen', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/master/admins', sessions.authed({ body: { admins: [], next: null, total: 0 } }, ['master']));
    server.on('GET /api/master/totals', sessions.authed({ body: { owners: 0, farmers: 0, running: 0, onHold: 0, since: '2026-10-28T06:00:00Z', chargedSeconds: 0, cashTaka: 0 } }, ['master']));
    const { password } = passwords(server, sessions, MASTER);
    renderApp(signedInStorage(sessions, MASTER));
    await screen.findByTestId('admins');
    expect(screen.queryByTestId('password')).toBeNull();
    fireEvent.press(await screen.findByTestId('password-open'));
    await screen.findByTestId('password');
    type('master-password', NEW, NEW);
    fireEvent.press(screen.getByTestId('password-send'));
    expect(await screen.findByTestId('password-success')).toBeTruthy();
    expect(password()).toBe(NEW);
  });
});
