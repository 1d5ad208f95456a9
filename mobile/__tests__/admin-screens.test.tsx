import { act, fireEvent, screen, waitFor, within } from '@testing-library/react-native';

import type { Status, UserWithBalance } from '../src/api/types';
import { formatNumber } from '../src/i18n/format';
import { STRINGS } from '../src/i18n/strings';
import { CONFIRM_GUARD_MS } from '../src/ui/useConfirm';
import { updateWords } from '../src/ui/words';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { ADMIN, FakeStream, KARIM, MASTER, SALMA, entry, error, idle, status } from '../test/fakeServer';

/** Waits as a person does between reading "Tap again…" and tapping: past the double-tap guard. */
const deliberately = () => act(() => new Promise<void>((r) => setTimeout(r, CONFIRM_GUARD_MS + 50)));

const salmaRunning = (): Status =>
  status({ motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 600 }, me: { availableSeconds: 0 }, device: { relay: true } });

/** The owner's one device, as `GET /api/admin/devices` lists it, with `more` of its fields. */
const fieldPump = (more: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'd1',
  name: 'Field pump',
  online: true,
  lastSeenAt: '2026-11-27T08:57:00Z',
  loadShedding: false,
  ready: true,
  relay: false,
  firmware: '0.1.0',
  ...more,
});

/**
 * An owner signed in, the app in front. With `events`, the server also holds the live event
 * stream: each `setStatus` is sent over it, as the real server sends every change.
 */
function admin(initial: Status = salmaRunning(), pollMs?: number, { events = false } = {}) {
  const { server, sessions } = newServer();
  let current = initial;
  const streams: FakeStream[] = [];
  // The line as the server has it: what GET /api/queue answers, and what each event carries.
  const queue = () =>
    current.motor.state === 'IDLE'
      ? { active: null, waiting: [] }
      : {
          active: entry({ userId: SALMA.id, userName: SALMA.name, remainingSeconds: 600 }),
          waiting: [entry({ id: 'e2', status: 'WAITING', position: 1, remainingSeconds: null })],
        };
  const live = () => ({ ...current, queue: queue(), unread: 0 });
  if (events) {
    server.on(
      'GET /api/events',
      sessions.authed(() => {
        const stream = new FakeStream();
        stream.send('state', live());
        streams.push(stream);
        return { stream };
      }),
    );
  }
  const isAdmin = ['admin', 'master'] as const;
  server.on('GET /api/motor/status', sessions.authed(() => ({ body: current })));
  server.on('GET /api/queue', sessions.authed(() => ({ body: queue() })));
  server.on(
    'GET /api/admin/devices',
    sessions.authed(
      () => ({
        body: [fieldPump({ relay: current.device.relay })],
      }),
      [...isAdmin],
    ),
  );
  const users: UserWithBalance[] = [
    { ...KARIM, availableSeconds: 1797, availableMinutes: 29 },
    { ...SALMA, availableSeconds: 600, availableMinutes: 10 },
  ];
  server.on('GET /api/admin/users', sessions.authed(() => ({ body: users }), [...isAdmin]));
  const cards = [{ uid: '04A1B2C3', userId: KARIM.id, boundAt: '2026-11-27T08:00:00Z' }];
  server.on('GET /api/admin/cards', sessions.authed(() => ({ body: cards }), [...isAdmin]));
  server.on('GET /api/admin/usage', sessions.authed(() => ({ body: [] }), [...isAdmin]));
  server.on('GET /api/admin/receipts', sessions.authed(() => ({ body: [] }), [...isAdmin]));
  renderApp(signedInStorage(sessions, ADMIN), pollMs);
  const setStatus = (s: Status) => {
    current = s;
    for (const stream of streams) stream.send('state', live());
  };
  return { server, sessions, users, cards, streams, setStatus };
}

describe('admin', () => {
  test('gets the pump owner tabs, never the farmer home', async () => {
    admin();
    await screen.findByText('Field pump');
    for (const id of ['pump', 'admin-queue', 'users', 'requests']) expect(screen.getByTestId(`tab-${id}`)).toBeTruthy();
    expect(screen.queryByTestId('tab-home')).toBeNull();
    expect(screen.queryByText('START')).toBeNull();
  });

  test('pump: the motor state, who runs, and the device in words', async () => {
    admin();
    expect(await screen.findByText('Salma Begum')).toBeTruthy();
    expect(screen.getByTestId('state-word')).toHaveTextContent('RUNNING');
    expect(screen.getByText('10 min left')).toBeTruthy();
    // One device status, derived by the server: never "Ready" beside "Motor switch ON".
    expect(screen.getByTestId('device-status')).toHaveTextContent(/Pumping/);
    expect(screen.queryByText('Ready')).toBeNull();
    expect(screen.getByText('Last seen 27 Nov 2026, 8:57 AM')).toBeTruthy();
  });

  test('pump: HOLD shows why', async () => {
    admin(status({ motor: { state: 'HOLD', holdReason: 'DEVICE_OFFLINE', activeUserId: SALMA.id, remainingSeconds: 300 } }));
    expect(await screen.findByText('ON HOLD')).toBeTruthy();
    // The time left is shown during a hold too.
    expect(screen.getByText('The pump controller is not connected · 5 min left')).toBeTruthy();
  });

  test('pump: stopping a run takes two taps and calls the admin stop', async () => {
    const { server, sessions, setStatus } = admin();
    server.on(
      'POST /api/admin/motor/stop',
      sessions.authed(() => {
        setStatus(idle());
        return { body: entry({ userId: SALMA.id, userName: SALMA.name, status: 'COMPLETED', endReason: 'ADMIN_STOP' }) };
      }),
    );
    fireEvent.press(await screen.findByText('STOP THIS RUN'));
    expect(server.count('POST /api/admin/motor/stop')).toBe(0);
    // A double tap is one tap: it only asks.
    fireEvent.press(screen.getByText('TAP AGAIN TO STOP THE RUN OF Salma Begum'));
    expect(server.count('POST /api/admin/motor/stop')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByText('TAP AGAIN TO STOP THE RUN OF Salma Begum'));
    expect(await screen.findByText('The run of Salma Begum was stopped.')).toBeTruthy();
    expect(server.count('POST /api/admin/motor/stop')).toBe(1);
    // It names the run shown: sent again, it could not stop the next farmer's.
    expect(server.last('POST /api/admin/motor/stop')!.body).toEqual({ entryId: 'e1' });
    await waitFor(() => expect(screen.getByTestId('state-word')).toHaveTextContent('IDLE'));
  });

  test('pump: a Stop whose run had ended already (sent twice) says so', async () => {
    const { server } = admin();
    server.on('POST /api/admin/motor/stop', error(409, 'ALREADY_ENDED', 'this run has ended already; nothing was stopped'));
    fireEvent.press(await screen.findByText('STOP THIS RUN'));
    await deliberately();
    fireEvent.press(screen.getByText('TAP AGAIN TO STOP THE RUN OF Salma Begum'));
    expect(await screen.findByText('That run had ended already: nothing was stopped. The screen is updated.')).toBeTruthy();
    expect(server.last('POST /api/admin/motor/stop')!.body).toEqual({ entryId: 'e1' });
  });

  test('queue: the line, and stop from there; a 404 (already ended) is a message', async () => {
    const { server } = admin();
    fireEvent.press(await screen.findByTestId('tab-admin-queue'));
    const active = await screen.findByTestId('queue-active');
    expect(within(active).getByText('Salma Begum')).toBeTruthy();
    expect(within(screen.getByTestId('queue-waiting-1')).getByText('Karim Mia')).toBeTruthy();
    server.on('POST /api/admin/motor/stop', error(404, 'NOT_FOUND', 'no such active run'));
    fireEvent.press(within(active).getByText('STOP THIS RUN'));
    await deliberately();
    fireEvent.press(within(active).getByText('TAP AGAIN TO STOP THE RUN OF Salma Begum'));
    // Said in the run's card, beside its button.
    expect(await within(active).findByText('Not found. It may have just changed; the screen is updated.')).toBeTruthy();
  });

  test('queue: over the event stream the line comes with each state, unread; a stop made here reads it at once', async () => {
    // Polling on a short clock (50 ms): were the line read with each poll, the count would climb.
    const { server, sessions, setStatus } = admin(salmaRunning(), 50, { events: true });
    fireEvent.press(await screen.findByTestId('tab-admin-queue'));
    const active = await screen.findByTestId('queue-active');
    expect(within(active).getByText('Salma Begum')).toBeTruthy();
    expect(within(screen.getByTestId('queue-waiting-1')).getByText('Karim Mia')).toBeTruthy();
    await waitFor(() => expect(server.count('GET /api/events')).toBe(1));
    await act(() => new Promise((resolve) => setTimeout(resolve, 300)));
    const lines = server.count('GET /api/queue');
    // Two states more (the server's refresh every 15 s): each shown, the line each carried with it.
    for (let i = 0; i < 2; i++) {
      setStatus(salmaRunning());
      await act(() => new Promise((resolve) => setTimeout(resolve, 250)));
    }
    expect(server.count('GET /api/queue')).toBe(lines);
    expect(within(screen.getByTestId('queue-active')).getByText('Salma Begum')).toBeTruthy();
    // The owner's own change to the line is read back at once, not left to the event to come (nor
    // to the status read after every stop, which brings no line).
    server.on(
      'POST /api/admin/motor/stop',
      sessions.authed({ body: entry({ userId: SALMA.id, userName: SALMA.name, status: 'COMPLETED', endReason: 'ADMIN_STOP' }) }),
    );
    fireEvent.press(within(active).getByText('STOP THIS RUN'));
    await deliberately();
    fireEvent.press(within(active).getByText('TAP AGAIN TO STOP THE RUN OF Salma Begum'));
    expect(await screen.findByText('The run of Salma Begum was stopped.')).toBeTruthy();
    await waitFor(() => expect(server.count('GET /api/queue')).toBeGreaterThan(lines));
    const after = server.calls.slice(server.calls.findIndex((c) => c.path === '/api/admin/motor/stop') + 1).map((c) => `${c.method} ${c.path}`);
    expect(after.indexOf('GET /api/queue')).toBeLessThan(after.indexOf('GET /api/motor/status'));
  });

  test('farmers: balances, recharge with the chosen minutes', async () => {
    const { server, sessions, users } = admin();
    server.on(
      'POST /api/admin/recharge',
      sessions.authed((req) => {
        const u = users.find((x) => x.id === req.body.userId)!;
        u.availableSeconds += req.body.minutes * 60;
        return { body: { userId: u.id, name: u.name, availableSeconds: u.availableSeconds, availableMinutes: Math.floor(u.availableSeconds / 60) } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    expect(await screen.findByTestId('user-karim-balance')).toHaveTextContent('29 min 57 s');
    expect(screen.getByTestId('user-salma-balance')).toHaveTextContent('10 min');
    fireEvent.press(screen.getByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-minutes'), '20');
    fireEvent.press(screen.getByText('Recharge +20 min'));
    // The answer is in the farmer's card, where the owner tapped (not at the top of the list).
    const card = screen.getByTestId('user-karim');
    expect(await within(card).findByText('✓ +20 min added. Karim Mia now has 49 min 57 s.')).toBeTruthy();
    expect(server.last('POST /api/admin/recharge')!.body).toEqual({ userId: KARIM.id, minutes: 20, note: null });
    await waitFor(() => expect(screen.getByTestId('user-karim-balance')).toHaveTextContent('49 min 57 s'));
    // Made: the minutes are chosen afresh, so a second tap is not the same recharge again.
    expect(screen.getByTestId('user-karim-minutes').props.value).toBe('');
    expect(screen.getByTestId('user-karim-recharge')).toBeDisabled();
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    expect(server.count('POST /api/admin/recharge')).toBe(1);
  });

  test('farmers: a refused recharge is said in the farmer’s card, and what was typed stays', async () => {
    const { server } = admin();
    server.on('POST /api/admin/recharge', error(403, 'FORBIDDEN', 'not yours'));
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-salma-open'));
    fireEvent.changeText(screen.getByTestId('user-salma-minutes'), '45');
    fireEvent.press(screen.getByTestId('user-salma-recharge'));
    expect(await within(screen.getByTestId('user-salma')).findByText('Your account is not allowed to do this.')).toBeTruthy();
    expect(within(screen.getByTestId('user-karim')).queryByText('Your account is not allowed to do this.')).toBeNull();
    expect(screen.getByTestId('user-salma-minutes').props.value).toBe('45');
  });

  test('farmers: a recharge tapped again after its answer was lost is made once', async () => {
    const { server, sessions, users } = admin();
    // The server as it keeps keys: one change per key, the same answer for the key again. The
    // first answer is lost on the way back (the change is made).
    const made = new Map<string, unknown>();
    let lose = true;
    server.on(
      'POST /api/admin/recharge',
      sessions.authed((req) => {
        const key = req.headers['idempotency-key']!;
        const repeated = made.has(key);
        if (!repeated) {
          const u = users.find((x) => x.id === req.body.userId)!;
          u.availableSeconds += req.body.minutes * 60;
          made.set(key, { userId: u.id, name: 'Karim Mia', availableSeconds: u.availableSeconds, availableMinutes: 0 });
        }
        if (lose) {
          lose = false;
          throw new TypeError('Network request failed');
        }
        return { body: { ...(made.get(key) as object), repeated } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-minutes'), '20');
    fireEvent.press(screen.getByText('Recharge +20 min'));
    expect(await screen.findByText('Cannot reach the server. Check the internet or the server address.')).toBeTruthy();
    fireEvent.press(screen.getByText('Recharge +20 min'));
    // Made by the first tap, whose answer was lost: said so, and nothing added now.
    expect(
      await screen.findByText('✓ This was made already (its answer was lost on the way): nothing was added now. Karim Mia has 49 min 57 s.'),
    ).toBeTruthy();
    // Then another recharge is a new change (its minutes chosen again), with a new key.
    fireEvent.press(screen.getByTestId('user-karim-preset-10'));
    fireEvent.press(screen.getByText('Recharge +10 min'));
    expect(await screen.findByText('✓ +10 min added. Karim Mia now has 59 min 57 s.')).toBeTruthy();
    const keys = server.calls.filter((c) => c.path === '/api/admin/recharge').map((c) => c.headers['idempotency-key']);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(made.size).toBe(2);
  });

  test('pump: a device registered again after its answer was lost is one device, and says where its key is', async () => {
    const { server, sessions } = admin();
    // The server as it keeps keys: one device per key; the same key again answers `repeated` and
    // no key (it keeps only the key's hash). The first answer is lost on the way back.
    const made = new Map<string, string>();
    let lose = true;
    server.on(
      'POST /api/admin/devices',
      sessions.authed((req) => {
        const key = req.headers['idempotency-key']!;
        const repeated = made.has(key);
        if (!repeated) made.set(key, `d${made.size + 2}`);
        if (lose) {
          lose = false;
          throw new TypeError('Network request failed');
        }
        const id = made.get(key)!;
        return {
          body: repeated
            ? { id, name: req.body.name, deviceKey: null, linkSecret: null, repeated: true }
            : { id, name: req.body.name, deviceKey: 'pp_dev_new', linkSecret: 'pp_link_new', repeated: false },
        };
      }),
    );
    fireEvent.changeText(await screen.findByTestId('device-name'), 'River pump');
    fireEvent.press(screen.getByTestId('device-register'));
    expect(await screen.findByText('Cannot reach the server. Check the internet or the server address.')).toBeTruthy();
    fireEvent.press(screen.getByTestId('device-register'));
    expect(await screen.findByTestId('device-made-already')).toHaveTextContent(/registered already/);
    expect(screen.queryByTestId('device-key')).toBeNull();
    // Another device is a new registration, with a new key, and its key is shown.
    fireEvent.changeText(screen.getByTestId('device-name'), 'Hill pump');
    fireEvent.press(screen.getByTestId('device-register'));
    expect(await screen.findByTestId('device-key')).toHaveTextContent('pp_dev_new');
    const keys = server.calls.filter((c) => c.path === '/api/admin/devices' && c.method === 'POST').map((c) => c.headers['idempotency-key']);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(made.size).toBe(2);
  });

  test('farmers: suspend needs a second tap; unsuspend does not', async () => {
    const { server, sessions, users } = admin();
    server.on(
      'POST /api/admin/users/{id}/suspend',
      sessions.authed(() => {
        users[0]!.suspended = true;
        return { body: { ...KARIM, suspended: true } };
      }),
    );
    server.on(
      'POST /api/admin/users/{id}/unsuspend',
      sessions.authed(() => {
        users[0]!.suspended = false;
        return { body: KARIM };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.press(screen.getByText('Suspend'));
    expect(server.count('POST /api/admin/users/u1/suspend')).toBe(0);
    // The second tap's label names the farmer; a double tap does not pass for it.
    fireEvent.press(screen.getByText('Tap again to suspend Karim Mia'));
    expect(server.count('POST /api/admin/users/u1/suspend')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByText('Tap again to suspend Karim Mia'));
    expect(await within(screen.getByTestId('user-karim')).findByText('Karim Mia is suspended.')).toBeTruthy();
    expect(await screen.findByText('SUSPENDED')).toBeTruthy();
    fireEvent.press(screen.getByText('Unsuspend'));
    expect(await screen.findByText('Karim Mia can use the pump again.')).toBeTruthy();
    expect(server.count('POST /api/admin/users/u1/unsuspend')).toBe(1);
  });

  test('minute requests: approve and reject; a request decided elsewhere is a message', async () => {
    const { server, sessions } = admin();
    const pending = [
      { id: 'r1', userId: KARIM.id, minutes: 15, note: 'paid cash', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' },
      { id: 'r2', userId: SALMA.id, minutes: 60, note: '', status: 'PENDING', createdAt: '2026-11-27T09:05:00Z' },
    ];
    server.on('GET /api/admin/minute-requests', sessions.authed(() => ({ body: pending })));
    server.on(
      'POST /api/admin/minute-requests/{id}/approve',
      sessions.authed((req) => {
        const id = req.path.split('/')[4];
        const i = pending.findIndex((r) => r.id === id);
        const [r] = pending.splice(i, 1);
        return { body: { ...r, status: 'APPROVED' } };
      }),
    );
    server.on('POST /api/admin/minute-requests/{id}/reject', error(409, 'ALREADY_DECIDED', 'already decided'));
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const first = await screen.findByTestId('request-r1');
    expect(within(first).getByText('Karim Mia')).toBeTruthy();
    expect(within(first).getByText('15 min')).toBeTruthy();
    expect(within(first).getByText('paid cash')).toBeTruthy();
    fireEvent.press(within(first).getByText('Approve'));
    // The answer is shown where the owner tapped: the decided request keeps its place, without
    // its buttons or its "balance now → after" (the balance read since holds the minutes).
    await waitFor(() => expect(server.count('GET /api/admin/minute-requests')).toBe(2));
    const decided = await screen.findByTestId('request-r1');
    await waitFor(() => expect(within(decided).queryByText('Approve')).toBeNull());
    expect(within(decided).getByText('Approved 15 min for Karim Mia.')).toBeTruthy();
    expect(within(decided).queryByText('Reject')).toBeNull();
    expect(within(decided).queryByTestId('request-r1-balance')).toBeNull();
    const second = screen.getByTestId('request-r2');
    fireEvent.press(within(second).getByText('Reject'));
    fireEvent.press(within(second).getByText('Reject the request'));
    expect(await within(second).findByText('This request was already decided.')).toBeTruthy();
    // The next answer takes the place of the last: the request decided before is gone.
    expect(screen.queryByTestId('request-r1')).toBeNull();
    expect(server.count('POST /api/admin/minute-requests/r1/approve')).toBe(1);
  });

  test('reject asks why: the picked reason is sent and said in the message, once; none picked sends none', async () => {
    const { server, sessions } = admin();
    const pending = [
      { id: 'r1', userId: KARIM.id, minutes: 15, note: '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' },
      { id: 'r2', userId: SALMA.id, minutes: 60, note: '', status: 'PENDING', createdAt: '2026-11-27T09:05:00Z' },
    ];
    server.on('GET /api/admin/minute-requests', sessions.authed(() => ({ body: pending })));
    server.on(
      'POST /api/admin/minute-requests/{id}/reject',
      sessions.authed((req) => {
        // As the server answers: the request rejected, with the reason it was sent (none: null).
        const id = req.path.split('/')[4];
        const [r] = pending.splice(pending.findIndex((p) => p.id === id), 1);
        return { body: { ...r, status: 'REJECTED', rejectReason: req.body?.reason ?? null } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const first = await screen.findByTestId('request-r1');
    fireEvent.press(within(first).getByText('Reject'));
    // Nothing is sent yet: the card asks why, "No reason" picked, each choice a full-width row.
    expect(within(first).getByText('Why? The farmer sees it.')).toBeTruthy();
    expect(within(first).getByTestId('reject-r1-reason-NONE')).toBeSelected();
    for (const words of ['Payment not received', 'The payment does not match the minutes asked', 'Ask for fewer minutes', 'The pump is closed for now']) {
      expect(within(first).getByText(new RegExp(words))).toBeTruthy();
    }
    expect(within(first).queryByText('Approve')).toBeNull();
    expect(server.count('POST /api/admin/minute-requests/r1/reject')).toBe(0);
    fireEvent.press(within(first).getByTestId('reject-r1-reason-TOO_MANY'));
    expect(within(first).getByTestId('reject-r1-reason-TOO_MANY')).toBeSelected();
    expect(within(first).getByTestId('reject-r1-reason-NONE')).not.toBeSelected();
    fireEvent.press(within(first).getByText('Reject the request'));
    // As the dashboard's message: the reason the server kept, in the same words as the choice, once.
    const decided = await screen.findByTestId('requests-success');
    expect(decided).toHaveTextContent('Rejected the request of Karim Mia. Reason: Ask for fewer minutes.');
    expect(server.last('POST /api/admin/minute-requests/r1/reject')!.body).toEqual({ reason: 'TOO_MANY' });
    expect(within(screen.getByTestId('request-r1')).getAllByText(/Ask for fewer minutes/)).toHaveLength(1);

    // Back leaves the request waiting; rejected with "No reason", nothing names a reason.
    const second = screen.getByTestId('request-r2');
    fireEvent.press(within(second).getByText('Reject'));
    fireEvent.press(within(second).getByTestId('reject-r2-reason-PUMP_CLOSED'));
    fireEvent.press(within(second).getByText('Back'));
    expect(within(second).queryByText('Why? The farmer sees it.')).toBeNull();
    expect(within(second).getByText('Approve')).toBeTruthy();
    fireEvent.press(within(second).getByText('Reject'));
    // Asked again, it starts from "No reason": the last pick is not sent by surprise.
    expect(within(second).getByTestId('reject-r2-reason-NONE')).toBeSelected();
    fireEvent.press(within(second).getByText('Reject the request'));
    expect(await within(screen.getByTestId('request-r2')).findByText('Rejected the request of Salma Begum.')).toBeTruthy();
    expect(server.count('POST /api/admin/minute-requests/r2/reject')).toBe(1);
    expect(server.last('POST /api/admin/minute-requests/r2/reject')!.body).toEqual({});
    expect(within(screen.getByTestId('request-r2')).queryByText(/Reason/)).toBeNull();
  });

  test('reject in Bangla: the question, the reasons and the reason shown, in Bangla words', async () => {
    const { server, sessions } = admin();
    const pending = [{ id: 'r1', userId: KARIM.id, minutes: 15, note: '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' }];
    server.on('GET /api/admin/minute-requests', sessions.authed(() => ({ body: pending })));
    server.on(
      'POST /api/admin/minute-requests/{id}/reject',
      sessions.authed((req) => ({ body: { ...pending.pop(), status: 'REJECTED', rejectReason: req.body?.reason ?? null } })),
    );
    fireEvent.press(await screen.findByTestId('language'));
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const card = await screen.findByTestId('request-r1');
    fireEvent.press(within(card).getByText('নামঞ্জুর'));
    expect(within(card).getByText('কেন? কৃষক এটি দেখবেন।')).toBeTruthy();
    expect(within(card).getByTestId('reject-r1-reason-NONE')).toHaveTextContent('●  কারণ ছাড়া');
    fireEvent.press(within(card).getByTestId('reject-r1-reason-NOT_PAID'));
    fireEvent.press(within(card).getByText('অনুরোধ নামঞ্জুর করুন'));
    expect(await screen.findByTestId('requests-success')).toHaveTextContent('Karim Mia-এর অনুরোধ নামঞ্জুর হয়েছে। কারণ: টাকা পাওয়া যায়নি।');
    expect(server.last('POST /api/admin/minute-requests/r1/reject')!.body).toEqual({ reason: 'NOT_PAID' });
  });

  test('a decided request shows as decided at once: its buttons never come back while the list reloads', async () => {
    const { server, sessions } = admin();
    const before = [
      { id: 'r1', userId: KARIM.id, minutes: 15, note: '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' },
      { id: 'r2', userId: SALMA.id, minutes: 60, note: '', status: 'PENDING', createdAt: '2026-11-27T09:05:00Z' },
    ];
    // The first read answers; every reload after a decision waits until let go, then answers the
    // list as it was read before the decisions (a slow link, a read that raced the write).
    const held: (() => void)[] = [];
    server.on(
      'GET /api/admin/minute-requests',
      sessions.authed(async () => {
        if (server.count('GET /api/admin/minute-requests') > 1) await new Promise<void>((go) => held.push(go));
        return { body: before };
      }),
    );
    server.on(
      'POST /api/admin/minute-requests/{id}/approve',
      sessions.authed((req) => ({ body: { ...before.find((r) => r.id === req.path.split('/')[4]), status: 'APPROVED' } })),
    );
    server.on(
      'POST /api/admin/minute-requests/{id}/reject',
      sessions.authed((req) => ({
        body: { ...before.find((r) => r.id === req.path.split('/')[4]), status: 'REJECTED', rejectReason: req.body?.reason ?? null },
      })),
    );
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const first = await screen.findByTestId('request-r1');
    fireEvent.press(within(first).getByText('Approve'));
    // Answered, the reload still on its way: decided at once, no buttons.
    expect(await within(screen.getByTestId('request-r1')).findByText('Approved 15 min for Karim Mia.')).toBeTruthy();
    await waitFor(() => expect(held).toHaveLength(1));
    expect(within(screen.getByTestId('request-r1')).queryByText('Approve')).toBeNull();
    expect(within(screen.getByTestId('request-r1')).queryByText('Reject')).toBeNull();
    expect(screen.queryByTestId('request-r1-balance')).toBeNull();

    const second = screen.getByTestId('request-r2');
    fireEvent.press(within(second).getByText('Reject'));
    fireEvent.press(within(second).getByTestId('reject-r2-reason-NOT_PAID'));
    fireEvent.press(within(second).getByText('Reject the request'));
    const rejected = 'Rejected the request of Salma Begum. Reason: Payment not received.';
    expect(await within(screen.getByTestId('request-r2')).findByText(rejected)).toBeTruthy();
    await waitFor(() => expect(held).toHaveLength(2));
    expect(within(screen.getByTestId('request-r2')).queryByText('Approve')).toBeNull();
    expect(within(screen.getByTestId('request-r2')).queryByText('Reject')).toBeNull();
    expect(within(screen.getByTestId('request-r2')).queryByText('Reject the request')).toBeNull();
    // The next answer takes the place of the last: the request approved before is not offered again.
    expect(screen.queryByTestId('request-r1')).toBeNull();

    // The reloads answer with both still waiting: neither is offered again.
    await act(async () => held.forEach((go) => go()));
    await waitFor(() => expect(server.count('GET /api/admin/minute-requests')).toBe(3));
    expect(screen.queryByText('Approve')).toBeNull();
    expect(screen.queryByTestId('request-r1')).toBeNull();
    expect(within(screen.getByTestId('request-r2')).getByText(rejected)).toBeTruthy();
    expect(server.count('POST /api/admin/minute-requests/r1/approve')).toBe(1);
    expect(server.count('POST /api/admin/minute-requests/r2/reject')).toBe(1);
  });

  test('a request another owner decided first shows as decided: its buttons never come back, even from a list read before', async () => {
    const { server, sessions } = admin();
    const waiting = [{ id: 'r1', userId: KARIM.id, minutes: 15, note: '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' }];
    // Every read answers the list as it was before the other owner's decision.
    server.on('GET /api/admin/minute-requests', sessions.authed(() => ({ body: waiting })));
    server.on('POST /api/admin/minute-requests/{id}/reject', error(409, 'ALREADY_DECIDED', 'already decided'));
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const card = await screen.findByTestId('request-r1');
    fireEvent.press(within(card).getByText('Reject'));
    fireEvent.press(within(card).getByText('Reject the request'));
    expect(await within(screen.getByTestId('request-r1')).findByText('This request was already decided.')).toBeTruthy();
    await waitFor(() => expect(server.count('GET /api/admin/minute-requests')).toBe(2));
    expect(within(screen.getByTestId('request-r1')).queryByText('Approve')).toBeNull();
    expect(within(screen.getByTestId('request-r1')).queryByText('Reject')).toBeNull();
    expect(within(screen.getByTestId('request-r1')).queryByText('Reject the request')).toBeNull();
    expect(screen.queryByTestId('reject-r1-reason')).toBeNull();
  });

  test('approve shows the balance now and after, and a big request needs a second tap', async () => {
    const { server, sessions } = admin();
    const pending = [{ id: 'r9', userId: KARIM.id, minutes: 600, note: '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' }];
    server.on('GET /api/admin/minute-requests', sessions.authed(() => ({ body: pending })));
    server.on('POST /api/admin/minute-requests/{id}/approve', sessions.authed(() => ({ body: { ...pending.pop(), status: 'APPROVED' } })));
    fireEvent.press(await screen.findByTestId('tab-requests'));
    const card = await screen.findByTestId('request-r9');
    expect(within(card).getByTestId('request-r9-balance')).toHaveTextContent('Balance 29 min 57 s now → 10 h 29 min after');
    fireEvent.press(within(card).getByText('Approve'));
    expect(server.count('POST /api/admin/minute-requests/r9/approve')).toBe(0);
    // A double tap only asks; the label says how much and to whom.
    fireEvent.press(within(card).getByText('Tap again to give 600 min to Karim Mia'));
    expect(server.count('POST /api/admin/minute-requests/r9/approve')).toBe(0);
    await deliberately();
    fireEvent.press(within(card).getByText('Tap again to give 600 min to Karim Mia'));
    expect(await screen.findByText('Approved 600 min for Karim Mia.')).toBeTruthy();
    expect(server.count('POST /api/admin/minute-requests/r9/approve')).toBe(1);
  });

  test('farmers: a correction takes minutes back with a reason, after a second tap', async () => {
    const { server, sessions } = admin();
    server.on(
      'POST /api/admin/corrections',
      sessions.authed(() => ({ body: { userId: KARIM.id, name: KARIM.name, availableSeconds: 897, availableMinutes: 14 } })),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-fix'), '−১৫');
    fireEvent.press(screen.getByText('Correct the balance'));
    const card = screen.getByTestId('user-karim');
    expect(await within(card).findByText('Type minutes to add, or minus minutes to take back (like -15), and say why.')).toBeTruthy();
    fireEvent.changeText(screen.getByTestId('user-karim-why'), 'typed 30, meant 15');
    fireEvent.press(screen.getByText('Correct the balance'));
    expect(server.count('POST /api/admin/corrections')).toBe(0);
    // The second tap says what it will do, and a double tap does not pass for it.
    fireEvent.press(screen.getByText('Tap again: −15 min from Karim Mia'));
    expect(server.count('POST /api/admin/corrections')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByText('Tap again: −15 min from Karim Mia'));
    expect(await within(card).findByText('✓ Corrected by −15 min. Karim Mia now has 14 min 57 s.')).toBeTruthy();
    expect(server.last('POST /api/admin/corrections')!.body).toEqual({ userId: KARIM.id, minutes: -15, note: 'typed 30, meant 15' });
  });

  test('farmers: a correction armed for one amount is not made for another typed after', async () => {
    const { server, sessions } = admin();
    server.on(
      'POST /api/admin/corrections',
      sessions.authed((req) => ({ body: { userId: KARIM.id, name: KARIM.name, availableSeconds: 1797 + req.body.minutes * 60, availableMinutes: 0 } })),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-fix'), '+5');
    fireEvent.changeText(screen.getByTestId('user-karim-why'), 'missed a recharge');
    fireEvent.press(screen.getByTestId('user-karim-correct'));
    expect(screen.getByTestId('user-karim-correct')).toHaveTextContent('Tap again: +5 min to Karim Mia');
    await deliberately();
    // The amount is changed after the first tap: the next tap asks again, for the new amount.
    fireEvent.changeText(screen.getByTestId('user-karim-fix'), '+500');
    expect(screen.getByTestId('user-karim-correct')).toHaveTextContent('Correct the balance');
    fireEvent.press(screen.getByTestId('user-karim-correct'));
    expect(server.count('POST /api/admin/corrections')).toBe(0);
    expect(screen.getByTestId('user-karim-correct')).toHaveTextContent('Tap again: +500 min to Karim Mia');
    await deliberately();
    fireEvent.press(screen.getByTestId('user-karim-correct'));
    expect(await screen.findByText('✓ Corrected by +500 min. Karim Mia now has 8 h 49 min.')).toBeTruthy();
    expect(server.count('POST /api/admin/corrections')).toBe(1);
    expect(server.last('POST /api/admin/corrections')!.body).toEqual({ userId: KARIM.id, minutes: 500, note: 'missed a recharge' });
  });

  test("the server's 403 is a message, not a crash", async () => {
    const { server } = admin();
    server.on('GET /api/admin/users', error(403, 'FORBIDDEN', 'this needs an admin'));
    fireEvent.press(await screen.findByTestId('tab-users'));
    expect(await screen.findByText('Your account is not allowed to do this.')).toBeTruthy();
    expect(screen.getByText('Try again')).toBeTruthy();
    // The rest of the app still works.
    fireEvent.press(screen.getByTestId('tab-pump'));
    expect(await screen.findByText('Field pump')).toBeTruthy();
  });

  test('pump: a firmware update on its way is followed with each status, until it is done, in words', async () => {
    // The status on a short clock here (every few seconds in the app): each one reads the devices.
    const { server } = admin(idle(), 50);
    let device = fieldPump({ firmware: 'pumppilot-fw/1.0.0', updateTo: '2.0.0', updateState: 'DOWNLOADING', updatePercent: 40 });
    server.on('GET /api/admin/devices', () => ({ body: [device] }));
    expect(await screen.findByText('downloading 2.0.0: 40%')).toBeTruthy();
    expect(screen.getByText('Firmware pumppilot-fw/1.0.0')).toBeTruthy();

    // The device finishes and runs it; the screen, left as it is, says so at a next read.
    device = { ...device, firmware: 'pumppilot-fw/2.0.0', updateTo: null, updateState: 'UPDATED', updatePercent: null };
    expect(await screen.findByText('up to date')).toBeTruthy();
    expect(screen.getByText('Firmware pumppilot-fw/2.0.0')).toBeTruthy();
    expect(screen.queryByText(/downloading/)).toBeNull();
  });

  test('pump: over the event stream a change shows at once with no status polled, and a download is still followed', async () => {
    // Polling on a short clock (50 ms): were the screen polling, the counts below would climb.
    const { server, streams, setStatus } = admin(idle(), 50, { events: true });
    await waitFor(() => expect(screen.getByTestId('state-word')).toHaveTextContent('IDLE'));
    await waitFor(() => expect(server.count('GET /api/events')).toBe(1));
    const polls = () => server.count('GET /api/motor/status');
    const reads = (path: string) => server.count(`GET ${path}`);
    // The stream's first state stops polling.
    await waitFor(() => expect(reads('/api/admin/usage')).toBeGreaterThanOrEqual(1));
    await act(() => new Promise((resolve) => setTimeout(resolve, 500)));
    const polled = polls();
    const usage = reads('/api/admin/usage');
    await act(() => new Promise((resolve) => setTimeout(resolve, 500)));
    expect(polls()).toBe(polled);
    expect(reads('/api/admin/usage')).toBe(usage);

    // Salma starts elsewhere: the server sends it, the screen shows it and reads its lists again,
    // all but the line, which the event carried.
    const lines = reads('/api/queue');
    setStatus(salmaRunning());
    expect(await screen.findByText('Salma Begum')).toBeTruthy();
    expect(screen.getByTestId('state-word')).toHaveTextContent('RUNNING');
    await waitFor(() => expect(reads('/api/admin/usage')).toBe(usage + 1));
    expect(polls()).toBe(polled);
    expect(reads('/api/queue')).toBe(lines);

    // A download's percent is no change of the pump: while one is underway the devices are read
    // at polling's pace all the same, and no longer once it is done.
    let device = fieldPump({ firmware: 'pumppilot-fw/1.0.0', updateTo: '2.0.0', updateState: 'DOWNLOADING', updatePercent: 40 });
    server.on('GET /api/admin/devices', () => ({ body: [device] }));
    setStatus(salmaRunning());
    expect(await screen.findByText('downloading 2.0.0: 40%')).toBeTruthy();
    device = { ...device, updatePercent: 70 };
    expect(await screen.findByText('downloading 2.0.0: 70%')).toBeTruthy();
    device = { ...device, firmware: 'pumppilot-fw/2.0.0', updateTo: null, updateState: 'UPDATED', updatePercent: null };
    expect(await screen.findByText('up to date')).toBeTruthy();
    const devices = reads('/api/admin/devices');
    await act(() => new Promise((resolve) => setTimeout(resolve, 500)));
    expect(reads('/api/admin/devices')).toBeLessThanOrEqual(devices + 1);
    expect(polls()).toBe(polled);
    expect(streams).toHaveLength(1);
  });

  test('pump: left in front, the screen reads again with each status, and while nothing changes no body comes back', async () => {
    const { server, setStatus } = admin(idle(), 50);
    expect(await screen.findByTestId('usage-summary')).toBeTruthy();
    // No run in the fortnight: no farmer to name, so the farmers' list is not read at all.
    expect(server.count('GET /api/admin/users')).toBe(0);
    const reads = ['GET /api/motor/status', 'GET /api/admin/devices', 'GET /api/queue', 'GET /api/admin/usage', 'GET /api/admin/receipts'];
    const count = () => server.calls.length;
    const before = count();
    const bytes = server.bodyBytes;
    // Three more statuses: every read of the screen made again, every one answered "unchanged".
    await waitFor(() => expect(server.calls.slice(before).filter((c) => c.path === '/api/motor/status').length).toBeGreaterThanOrEqual(3));
    const since = server.calls.slice(before).filter((c) => c.answered !== undefined);
    for (const read of reads) expect(since.some((c) => `${c.method} ${c.path}` === read)).toBe(true);
    expect(since.filter((c) => c.answered !== 304)).toEqual([]);
    expect(server.bodyBytes).toBe(bytes);
    // The farmers' names are not read again while the runs name the same farmers: that list
    // carries every balance, which a run moves every second.
    expect(since.some((c) => c.path === '/api/admin/users')).toBe(false);
    // The same fortnight each time: a summary that moved its start by the clock would be a new read.
    const froms = new Set(server.calls.filter((c) => c.path === '/api/admin/usage').map((c) => c.query.get('from')));
    expect(froms.size).toBe(1);

    // A run starts: the status and the line come back in full, and the screen shows it.
    setStatus(salmaRunning());
    expect(await screen.findByText('Salma Begum')).toBeTruthy();
    expect(server.bodyBytes).toBeGreaterThan(bytes);

    // A farmer's first run of the fortnight ends: the names are read again, and the run is his.
    const users = server.count('GET /api/admin/users');
    server.on('GET /api/admin/usage', {
      body: [{ entryId: 'e0', userId: KARIM.id, startedAt: '2026-11-27T08:00:00Z', endedAt: '2026-11-27T08:30:00Z', runningSeconds: 1800, heldSeconds: 0, chargedSeconds: 1800, endReason: 'USER_STOP' }],
    });
    expect(await screen.findByText('Karim Mia: 30 min')).toBeTruthy();
    expect(server.count('GET /api/admin/users')).toBe(users + 1);
  });

  test('an update in Bangla words and digits', () => {
    expect(updateWords('DOWNLOADING', '2.0.0', formatNumber(40, 'bn'), STRINGS.bn)).toBe('2.0.0 নামছে: ৪০%');
    expect(updateWords('UPDATED', '', '', STRINGS.bn)).toBe('হালনাগাদ');
    expect(updateWords('SOMETHING_NEW', '', '', STRINGS.en)).toBe('SOMETHING_NEW');
  });

  test('no device registered: says so', async () => {
    const { server } = admin(idle());
    server.on('GET /api/admin/devices', { body: [] });
    expect(await screen.findByText('No device is registered yet. Register the one at the pump below.')).toBeTruthy();
  });
});

test('master: the pump owners at a glance, and no motor polling', async () => {
  const { server, sessions } = newServer();
  server.on(
    'GET /api/master/admins',
    sessions.authed({ body: { admins: [{ ...ADMIN, userCount: 12, motorState: 'HOLD', deviceOnline: false }], next: null, total: 1 } }, ['master']),
  );
  renderApp(signedInStorage(sessions, MASTER));
  expect(await screen.findByText('Rahim Uddin')).toBeTruthy();
  expect(screen.getByText('rahim · 12 farmers')).toBeTruthy();
  expect(screen.getByText('ON HOLD')).toBeTruthy();
  expect(screen.getByText('Pump not connected')).toBeTruthy();
  expect(server.count('GET /api/motor/status')).toBe(0);
  expect(screen.queryByTestId('tab-pump')).toBeNull();
});

/** The master's `GET /api/master/totals` answer. */
const TOTALS = { owners: 3, farmers: 7, running: 1, onHold: 1, since: '2026-10-28T06:00:00Z', chargedSeconds: 3600, cashTaka: 150 };

test('master: the pump owners a page at a time, the next loaded with More, the totals every pump\'s', async () => {
  const { server, sessions } = newServer();
  server.on('GET /api/master/totals', sessions.authed({ body: TOTALS }, ['master']));
  const owner = (n: number) => ({ ...ADMIN, id: `a${n}`, username: `owner-${n}`, name: `Owner ${n}`, adminId: `a${n}` });
  server.on(
    'GET /api/master/admins',
    sessions.authed(
      (req) =>
        req.query.get('after') === 'owner-2'
          ? { body: { admins: [{ ...owner(3), userCount: 4, motorState: 'RUNNING', deviceOnline: true }], next: null, total: 3 } }
          : {
              body: {
                admins: [
                  { ...owner(1), userCount: 1, motorState: 'IDLE', deviceOnline: false },
                  { ...owner(2), userCount: 2, motorState: 'IDLE', deviceOnline: true, suspended: true },
                ],
                next: 'owner-2',
                total: 3,
              },
            },
      ['master'],
    ),
  );
  renderApp(signedInStorage(sessions, MASTER));
  const totals = await screen.findByTestId('totals');
  // Every pump's, though only the first page of owners is loaded.
  expect(totals).toHaveTextContent(/All pumps/);
  expect(totals).toHaveTextContent(/3 pump owners/);
  expect(totals).toHaveTextContent(/7 farmers/);
  expect(screen.getByTestId('admin-owner-2')).toHaveTextContent(/Suspended/i);
  expect(screen.getByText('owner-1 · 1 farmer')).toBeTruthy();
  expect(screen.queryByTestId('admin-owner-3')).toBeNull();
  expect(server.last('GET /api/master/admins')!.query.get('limit')).toBe('50');
  expect(server.last('GET /api/master/admins')!.query.get('after')).toBeNull();

  fireEvent.press(screen.getByTestId('admins-more'));
  expect(await screen.findByTestId('admin-owner-3')).toBeTruthy();
  expect(server.last('GET /api/master/admins')!.query.get('after')).toBe('owner-2');
  expect(screen.getByTestId('admin-owner-1')).toBeTruthy();
  expect(screen.queryByTestId('admins-more')).toBeNull();
  const all = screen.getByTestId('totals');
  expect(all).toHaveTextContent(/All pumps/);
  expect(all).toHaveTextContent(/7 farmers/);
  expect(server.count('GET /api/master/admins')).toBe(2);
  expect(server.count('GET /api/master/totals')).toBe(1);
});

test('master: totals across pumps, and one pump opened: its queue, farmers and last 14 days', async () => {
  const { server, sessions } = newServer();
  server.on('GET /api/master/totals', sessions.authed({ body: TOTALS }, ['master']));
  const OTHER = { ...ADMIN, id: 'a2', username: 'qadir', name: 'Qadir' };
  server.on(
    'GET /api/master/admins',
    sessions.authed(
      {
        body: {
          admins: [
            { ...ADMIN, userCount: 12, motorState: 'RUNNING', deviceOnline: true },
            { ...OTHER, userCount: 3, motorState: 'IDLE', deviceOnline: false },
          ],
          next: null,
          total: 2,
        },
      },
      ['master'],
    ),
  );
  server.on(
    'GET /api/queue',
    sessions.authed(
      () => ({
        body: {
          active: entry({ userId: SALMA.id, userName: SALMA.name, remainingSeconds: 600 }),
          waiting: [entry({ id: 'e2', userId: KARIM.id, userName: KARIM.name, status: 'WAITING', position: 1, remainingSeconds: null })],
        },
      }),
      ['master'],
    ),
  );
  server.on('GET /api/admin/users', sessions.authed({ body: [{ ...KARIM, availableSeconds: 1800, availableMinutes: 30 }] }, ['master']));
  server.on(
    'GET /api/admin/usage',
    sessions.authed(
      { body: [{ entryId: 'e0', userId: KARIM.id, startedAt: '2026-11-27T08:00:00Z', endedAt: '2026-11-27T09:00:00Z', runningSeconds: 3600, heldSeconds: 0, chargedSeconds: 3600, endReason: 'USER_STOP' }] },
      ['master'],
    ),
  );
  server.on(
    'GET /api/admin/receipts',
    sessions.authed({ body: [{ id: 'r1', userId: KARIM.id, userName: KARIM.name, at: '2026-11-27T07:00:00Z', minutes: 60, cashTaka: 150, recordedByName: ADMIN.name }] }, ['master']),
  );
  renderApp(signedInStorage(sessions, MASTER));
  const totals = await screen.findByTestId('totals');
  expect(totals).toHaveTextContent(/3 pump owners/);
  expect(totals).toHaveTextContent(/7 farmers/);
  expect(totals).toHaveTextContent(/1 pumping now/);
  expect(totals).toHaveTextContent(/1 on hold/);
  expect(totals).toHaveTextContent(/Pumped 1 h in the last 30 days/);
  expect(totals).toHaveTextContent(/Cash taken in the last 30 days: 150 taka/);
  fireEvent.press(screen.getByTestId('admin-rahim-open'));
  expect(await screen.findByTestId('pump-rahim-usage')).toHaveTextContent('Last 14 days: pumped 1 h, cash taken 150 taka');
  expect(screen.getByTestId('pump-rahim-active')).toHaveTextContent(SALMA.name);
  expect(screen.getByTestId('pump-rahim-waiting-1')).toHaveTextContent(`#1 ${KARIM.name}`);
  expect(screen.getByTestId(`pump-rahim-user-${KARIM.username}`)).toHaveTextContent(`${KARIM.name}: 30 min`);
  // Every read names the pump: the master has none of its own.
  for (const path of ['/api/queue', '/api/admin/users', '/api/admin/usage', '/api/admin/receipts']) {
    expect(server.calls.find((c) => c.path === path)!.query.get('adminId')).toBe(ADMIN.id);
  }
  expect(server.count('GET /api/motor/status')).toBe(0);
});
