import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react-native';
import type { ReactNode } from 'react';

import type { Status } from '../src/api/types';
import { AuthProvider, useAuth } from '../src/auth/AuthProvider';
import { I18nProvider } from '../src/i18n/I18n';
import { UsersScreen } from '../src/screens/admin/UsersScreen';
import { KEYS } from '../src/storage';
import { CONFIRM_GUARD_MS } from '../src/ui/useConfirm';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { KARIM, SALMA, entry, error, idle, runningMine, status } from '../test/fakeServer';

/** A farmer signed in before, with the status the server will answer. */
function farmer(initial: Status = idle(), prefs: Record<string, string> = {}, pollMs?: number) {
  const { server, sessions } = newServer();
  let current = initial;
  server.on('GET /api/motor/status', sessions.authed(() => ({ body: current })));
  const storage = signedInStorage(sessions, KARIM, prefs);
  renderApp(storage, pollMs);
  return { server, sessions, storage, setStatus: (s: Status) => (current = s) };
}

const stateWord = () => screen.getByTestId('state-word');

/** Waits as a person does between reading "Tap again…" and tapping: past the double-tap guard. */
const deliberately = (ms = CONFIRM_GUARD_MS + 50) => act(() => new Promise<void>((r) => setTimeout(r, ms)));

describe('home', () => {
  test('IDLE: words and grey, the balance in words, a big START', async () => {
    farmer();
    expect(await screen.findByText('IDLE')).toBeTruthy();
    expect(screen.getByText('The motor is free')).toBeTruthy();
    expect(screen.getByTestId('state').props.style).toEqual(expect.arrayContaining([expect.objectContaining({ backgroundColor: '#52525B' })]));
    expect(screen.getByTestId('balance-value')).toHaveTextContent('30 min');
    expect(screen.getByText('START')).toBeTruthy();
    expect(screen.getByTestId('device-status')).toHaveTextContent(/Ready/);
  });

  test('START: RUNNING shows at once, the server answer follows, the time counts down', async () => {
    const { server, sessions, setStatus } = farmer();
    await screen.findByText('IDLE');
    let release!: () => void;
    const answered = new Promise<void>((r) => (release = r));
    server.on(
      'POST /api/motor/start',
      sessions.authed(async () => {
        await answered;
        setStatus(runningMine(1800));
        return { body: entry({ remainingSeconds: 1800 }) };
      }),
    );
    fireEvent.press(screen.getByText('START'));
    // Optimistic: before the server has answered.
    expect(stateWord()).toHaveTextContent('RUNNING');
    expect(screen.getByText('Sending…')).toBeTruthy();
    release();
    await waitFor(() => expect(screen.getByText('STOP')).toBeTruthy());
    expect(screen.getByText('30 min left')).toBeTruthy();
    expect(screen.getByText('Your pump is running')).toBeTruthy();
    expect(server.last('POST /api/motor/start')!.body).toEqual({ minutes: null });
    await waitFor(() => expect(screen.getByTestId('state-detail')).toHaveTextContent('29 min 59 s left'), { timeout: 2500 });
  });

  test('a chosen run length is sent with the start', async () => {
    const { server, sessions } = farmer();
    await screen.findByText('IDLE');
    server.on('POST /api/motor/start', sessions.authed({ body: entry({ remainingSeconds: 900, requestedMinutes: 15 }) }));
    fireEvent.press(screen.getByTestId('limit-15'));
    fireEvent.press(screen.getByText('START'));
    await screen.findByText('STOP');
    expect(server.last('POST /api/motor/start')!.body).toEqual({ minutes: 15 });
  });

  test('STOP: a message with what was charged and the new balance', async () => {
    const { server, sessions, setStatus } = farmer(runningMine(1500, 1500));
    await screen.findByText('STOP');
    server.on(
      'POST /api/motor/stop',
      sessions.authed(() => {
        setStatus(status({ me: { availableSeconds: 1470 } }));
        return { body: entry({ status: 'COMPLETED', remainingSeconds: null, chargedSeconds: 330, availableSeconds: 1470, endReason: 'USER_STOP' }) };
      }),
    );
    fireEvent.press(screen.getByText('STOP'));
    expect(await screen.findByText('Stopped. Used 5 min 30 s. Balance 24 min 30 s.')).toBeTruthy();
    expect(stateWord()).toHaveTextContent('IDLE');
    expect(screen.getByTestId('balance-value')).toHaveTextContent('24 min 30 s');
  });

  test('HOLD: amber, with the reason in words and the time kept', async () => {
    farmer(
      status({
        motor: { state: 'HOLD', holdReason: 'LOAD_SHEDDING', activeUserId: KARIM.id, remainingSeconds: 1200 },
        me: { entry: entry({ status: 'HOLD', holdReason: 'LOAD_SHEDDING', remainingSeconds: 1200 }) },
        device: { loadShedding: true },
      }),
    );
    expect(await screen.findByText('ON HOLD')).toBeTruthy();
    expect(screen.getByText('Power cut (load shedding)')).toBeTruthy();
    expect(screen.getByTestId('state-extra')).toHaveTextContent('20 min left · It goes on by itself when this is fixed, and your time is kept.');
    expect(screen.getByTestId('state').props.style).toEqual(expect.arrayContaining([expect.objectContaining({ backgroundColor: '#F5B301' })]));
    expect(screen.getByTestId('device-status')).toHaveTextContent(/Power cut/);
  });

  test('HOLD while the grid settles: the reason in words and when the motor starts again', async () => {
    farmer(
      status({
        motor: { state: 'HOLD', holdReason: 'GRID_SETTLING', activeUserId: KARIM.id, remainingSeconds: 1200, resumeInSeconds: 42 },
        me: { entry: entry({ status: 'HOLD', holdReason: 'GRID_SETTLING', remainingSeconds: 1200 }) },
      }),
    );
    expect(await screen.findByText('Power is back; waiting for it to settle · starts again in about 42 s')).toBeTruthy();
  });

  test('HOLD for an unknown reason still shows the code rather than nothing', async () => {
    // A reason a newer server may add: outside the generated type, on purpose.
    const NEW_REASON = 'NEW_REASON' as unknown as 'LOAD_SHEDDING';
    farmer(
      status({
        motor: { state: 'HOLD', holdReason: NEW_REASON, activeUserId: KARIM.id, remainingSeconds: 60 },
        me: { entry: entry({ status: 'HOLD', holdReason: NEW_REASON, remainingSeconds: 60 }) },
      }),
    );
    expect(await screen.findByText('Paused (NEW_REASON)')).toBeTruthy();
  });

  test('WAITING: blue with the place in line, and LEAVE THE QUEUE', async () => {
    farmer(
      status({
        motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 600 },
        me: { entry: entry({ status: 'WAITING', position: 2, remainingSeconds: null }) },
      }),
    );
    expect(await screen.findByText('WAITING')).toBeTruthy();
    expect(screen.getByText('You are number 2 in line')).toBeTruthy();
    expect(screen.getByText('LEAVE THE QUEUE')).toBeTruthy();
    expect(screen.getByTestId('state').props.style).toEqual(expect.arrayContaining([expect.objectContaining({ backgroundColor: '#1747C6' })]));
  });

  test('leaving the line takes a second tap and says "you left"', async () => {
    const { server, sessions, setStatus } = farmer(
      status({
        motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 600 },
        me: { entry: entry({ status: 'WAITING', position: 3, remainingSeconds: null }) },
      }),
    );
    server.on(
      'POST /api/motor/stop',
      sessions.authed(() => {
        setStatus(status({ motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 590 } }));
        return { body: entry({ status: 'CANCELLED', endReason: 'LEFT_QUEUE', remainingSeconds: null, availableSeconds: 1800 }) };
      }),
    );
    fireEvent.press(await screen.findByText('LEAVE THE QUEUE'));
    expect(server.count('POST /api/motor/stop')).toBe(0);
    // The second tap says what leaving costs; a double tap does not pass for it.
    fireEvent.press(screen.getByText('Tap again to leave: you lose your place #3'));
    expect(server.count('POST /api/motor/stop')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByText('Tap again to leave: you lose your place #3'));
    expect(await screen.findByText('You left the queue. Your minutes are not touched.')).toBeTruthy();
    expect(server.count('POST /api/motor/stop')).toBe(1);
  });

  test('WAITING with the server\'s estimate, in whole minutes', async () => {
    farmer(
      status({
        motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 590 },
        me: { entry: entry({ status: 'WAITING', position: 1, remainingSeconds: null, estimatedWaitSeconds: 590 }) },
      }),
    );
    expect(await screen.findByText('About 10 min to wait · Another farmer is pumping')).toBeTruthy();
  });

  test('WAITING first in line: "You are next"', async () => {
    farmer(status({ motor: { state: 'HOLD', holdReason: 'LOAD_SHEDDING', activeUserId: SALMA.id }, me: { entry: entry({ status: 'WAITING', position: 1 }) } }));
    expect(await screen.findByText('You are next')).toBeTruthy();
    expect(screen.getByText('Another farmer’s run is paused')).toBeTruthy();
  });

  test('another farmer running: JOIN THE QUEUE', async () => {
    farmer(status({ motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 600 } }));
    // The farmer's own state leads, in grey: not RUNNING, whatever the motor does.
    expect(await screen.findByText('Another farmer is pumping · 10 min left')).toBeTruthy();
    expect(screen.getByTestId('state-word')).toHaveTextContent('IDLE');
    expect(screen.getByText('You are not pumping and not in the queue')).toBeTruthy();
    expect(screen.getByTestId('state').props.style).toEqual(expect.arrayContaining([expect.objectContaining({ backgroundColor: '#52525B' })]));
    expect(screen.getByText('JOIN THE QUEUE')).toBeTruthy();
  });

  test('no minutes: START says why at the button and does not start', async () => {
    const { server } = farmer(status({ me: { availableSeconds: 0 } }));
    await screen.findByText('IDLE');
    // The reason is where the farmer looks, at the button (not below the fold).
    expect(screen.getByTestId('no-minutes')).toHaveTextContent('No minutes left. Ask your pump owner to recharge, or request minutes.');
    expect(screen.getByTestId('start')).toBeDisabled();
    expect(screen.getByTestId('start').props.accessibilityLabel).toBe('START. No minutes left. Ask your pump owner to recharge, or request minutes.');
    expect(screen.queryByTestId('limit')).toBeNull();
    fireEvent.press(screen.getByText('START'));
    expect(server.count('POST /api/motor/start')).toBe(0);
    expect(stateWord()).toHaveTextContent('IDLE');
  });

  test('no minutes while another farmer pumps: JOIN THE QUEUE says why too', async () => {
    farmer(status({ motor: { state: 'RUNNING', activeUserId: SALMA.id, remainingSeconds: 600 }, me: { availableSeconds: 0 } }));
    expect(await screen.findByText('JOIN THE QUEUE')).toBeTruthy();
    expect(screen.getByTestId('start')).toBeDisabled();
    expect(screen.getByTestId('no-minutes')).toBeTruthy();
  });

  test('409 INSUFFICIENT_BALANCE (the minutes were gone by then): a message in words, and back to IDLE', async () => {
    const { server } = farmer(status({ me: { availableSeconds: 30 } }));
    await screen.findByText('IDLE');
    expect(screen.queryByTestId('no-minutes')).toBeNull();
    server.on('POST /api/motor/start', error(409, 'INSUFFICIENT_BALANCE', 'no minutes left'));
    fireEvent.press(screen.getByText('START'));
    expect(await screen.findByText('Not enough minutes. Ask your pump owner to recharge, or request minutes.')).toBeTruthy();
    expect(stateWord()).toHaveTextContent('IDLE');
  });

  test('offline: a banner with the last known time, and the last state stays', async () => {
    const { server } = farmer(runningMine());
    await screen.findByText('STOP');
    server.offline = true;
    fireEvent.press(screen.getByText('STOP'));
    expect(await screen.findByTestId('offline-banner')).toBeTruthy();
    expect(screen.getByText('Cannot reach the server.')).toBeTruthy();
    expect(screen.getByText(/^Showing what was known at \d+:\d\d [AP]M\.$/)).toBeTruthy();
    expect(screen.getByText('Cannot reach the server. Check the internet or the server address.')).toBeTruthy();
    expect(stateWord()).toHaveTextContent('RUNNING');
  });

  test('offline: the state is greyed "as of" the last answer, and its clock stops', async () => {
    const { server } = farmer(runningMine(1800, 1800));
    await screen.findByText('STOP');
    expect(screen.queryByTestId('state-as-of')).toBeNull();
    server.offline = true;
    // A poll that finds no server (the pull-to-refresh's, here).
    fireEvent(screen.getByTestId('home'), 'refresh');
    expect(await screen.findByTestId('offline-banner')).toBeTruthy();
    expect(stateWord()).toHaveTextContent('RUNNING');
    expect(screen.getByTestId('state-as-of')).toHaveTextContent(/^As of \d+:\d\d [AP]M$/);
    // Not green: what was known then, not what is.
    expect(screen.getByTestId('state').props.style).not.toEqual(expect.arrayContaining([expect.objectContaining({ backgroundColor: '#0B6E2A' })]));
    expect(screen.getByTestId('device-status')).toHaveTextContent(/Pumping · As of/);
    // Frozen at what the server last said, while a live clock would have moved on.
    expect(screen.getByTestId('state-detail')).toHaveTextContent('30 min left');
    await deliberately(1300);
    expect(screen.getByTestId('state-detail')).toHaveTextContent('30 min left');
    expect(screen.getByTestId('balance-value')).toHaveTextContent('30 min');
  });

  test('offline from the start: an error in words, no crash', async () => {
    const { server, sessions } = newServer();
    server.offline = true;
    renderApp(signedInStorage(sessions, KARIM));
    expect(await screen.findByTestId('offline-banner')).toBeTruthy();
    expect(screen.getByText('Try again')).toBeTruthy();
  });
});

describe('the other farmer screens', () => {
  test('queue: the active run and the line, with "you" marked', async () => {
    const { server, sessions } = farmer();
    server.on(
      'GET /api/queue',
      sessions.authed({
        body: {
          active: entry({ userId: SALMA.id, userName: SALMA.name, remainingSeconds: 600 }),
          waiting: [entry({ id: 'e2', status: 'WAITING', position: 1, remainingSeconds: null })],
        },
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-queue'));
    expect(await screen.findByText('Salma Begum')).toBeTruthy();
    expect(screen.getByText('10 min left')).toBeTruthy();
    expect(within(screen.getByTestId('queue-waiting-1')).getByText('Karim Mia (you)')).toBeTruthy();
    expect(within(screen.getByTestId('queue-waiting-1')).getByText('WAITING')).toBeTruthy();
  });

  test('wallet: the balance and the ledger in words', async () => {
    const { server, sessions } = farmer(status({ me: { availableSeconds: 1797 } }));
    server.on(
      'GET /api/wallet',
      sessions.authed({
        body: {
          availableSeconds: 1797,
          availableMinutes: 29,
          ledger: [
            { at: '2026-11-27T08:57:10Z', deltaSeconds: -3, kind: 'RUN_CHARGE', balanceAfter: 1797, note: '', receiptId: null, receiptNumber: null },
            {
              at: '2026-11-27T08:50:00Z',
              deltaSeconds: 1800,
              kind: 'RECHARGE',
              balanceAfter: 1800,
              note: 'paid 300 taka',
              receiptId: '01a242b71c3d7000',
              receiptNumber: '01A2-42B7-1C3D',
            },
          ],
        },
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-wallet'));
    expect(await screen.findByTestId('wallet-balance-value')).toHaveTextContent('29 min 57 s');
    expect(screen.getByText('Pumping')).toBeTruthy();
    expect(screen.getByText('−3 s')).toBeTruthy();
    expect(screen.getByText('+30 min')).toBeTruthy();
    expect(screen.getByText('paid 300 taka')).toBeTruthy();
    expect(screen.getByText('27 Nov 2026, 8:50 AM')).toBeTruthy();
    // The recharge's receipt number, as printed on the paper the farmer was given.
    expect(screen.getByTestId('ledger-1-receipt')).toHaveTextContent('Receipt no. 01A2-42B7-1C3D');
    expect(screen.queryByTestId('ledger-0-receipt')).toBeNull();
    expect(screen.queryByTestId('ledger-0-open-receipt')).toBeNull();

    // The paper lost: the farmer opens their copy from the line (their own receipt, read from the
    // server), with the cash paid, to share or print; and hides it again.
    let asked = 0;
    server.on(
      'GET /api/receipts/01a242b71c3d7000',
      sessions.authed(() => {
        asked++;
        return asked === 1
          ? error(503, 'UNAVAILABLE', 'the store cannot be reached; nothing was changed')
          : {
              body: {
                id: '01a242b71c3d7000',
                number: '01A2-42B7-1C3D',
                userId: KARIM.id,
                userName: 'Karim Mia',
                at: '2026-11-27T08:50:00Z',
                minutes: 30,
                cashTaka: 300,
                recordedByName: 'Rahim Uddin',
                void: null,
              },
            };
      }),
    );
    fireEvent.press(screen.getByTestId('ledger-1-open-receipt'));
    // The first read fails: said under the line, and the button is there to try again.
    expect(await screen.findByTestId('ledger-1-receipt-error')).toHaveTextContent('The server has a problem with its storage. Nothing was changed. Try again soon.');
    expect(screen.queryByTestId('ledger-1-receipt-card')).toBeNull();
    fireEvent.press(screen.getByTestId('ledger-1-open-receipt'));
    const card = await screen.findByTestId('ledger-1-receipt-card');
    expect(within(card).getByText('300 taka')).toBeTruthy();
    expect(within(card).getByText('Rahim Uddin')).toBeTruthy();
    expect(within(card).getByTestId('ledger-1-receipt-card-print')).toBeTruthy();
    expect(screen.getByText('Hide the receipt')).toBeTruthy();
    fireEvent.press(screen.getByTestId('ledger-1-open-receipt'));
    await waitFor(() => expect(screen.queryByTestId('ledger-1-receipt-card')).toBeNull());
    expect(asked).toBe(2);
  });

  test('wallet during my own run: the balance moves with each status, the ledger is read again when the run ends', async () => {
    // The status on a short clock (every few seconds in the app).
    const { server, sessions, setStatus } = farmer(runningMine(1200, 1500), {}, 50);
    const line = (deltaSeconds: number, balanceAfter: number) => ({ at: '2026-11-27T08:57:10Z', deltaSeconds, kind: 'RUN_CHARGE', balanceAfter, note: '', receiptId: null, receiptNumber: null });
    let ledger = [line(1800, 1800)];
    server.on('GET /api/wallet', sessions.authed(() => ({ body: { availableSeconds: 1800, availableMinutes: 30, ledger } })));
    fireEvent.press(await screen.findByTestId('tab-wallet'));
    expect(await screen.findByTestId('wallet-balance-value')).toHaveTextContent('25 min');
    const reads = server.count('GET /api/wallet');

    // A minute of the run: the balance shown follows the status, and the ledger is not read again.
    setStatus(runningMine(1140, 1440));
    await waitFor(() => expect(screen.getByTestId('wallet-balance-value')).toHaveTextContent('24 min'));
    const statuses = server.count('GET /api/motor/status');
    await waitFor(() => expect(server.count('GET /api/motor/status')).toBeGreaterThanOrEqual(statuses + 3));
    expect(server.count('GET /api/wallet')).toBe(reads);

    // The run ends: its charge is a line of the ledger, read again.
    ledger = [line(-360, 1440), ...ledger];
    setStatus(status({ me: { availableSeconds: 1440 } }));
    expect(await screen.findByText('−6 min')).toBeTruthy();
    expect(server.count('GET /api/wallet')).toBe(reads + 1);
  });

  test('request minutes: sends the number and note, lists the request; refuses nonsense', async () => {
    const { server, sessions } = farmer();
    const mine: object[] = [];
    server.on('GET /api/minute-requests', sessions.authed(() => ({ body: mine })));
    server.on(
      'POST /api/minute-requests',
      sessions.authed((req) => {
        const r = { id: 'r1', userId: KARIM.id, minutes: req.body.minutes, note: req.body.note ?? '', status: 'PENDING', createdAt: '2026-11-27T09:00:00Z' };
        mine.push(r);
        return { status: 201, body: r };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-request'));
    expect(await screen.findByText('No requests yet.')).toBeTruthy();
    fireEvent.changeText(screen.getByTestId('request-minutes'), 'ten');
    fireEvent.press(screen.getByText('Send request'));
    expect(await screen.findByText('Enter a whole number of minutes from 1 to 100000.')).toBeTruthy();
    expect(server.count('POST /api/minute-requests')).toBe(0);
    fireEvent.changeText(screen.getByTestId('request-minutes'), '১৫');
    fireEvent.changeText(screen.getByTestId('request-note'), 'paid cash');
    fireEvent.press(screen.getByText('Send request'));
    expect(await screen.findByText('Request for 15 min sent.')).toBeTruthy();
    expect(server.last('POST /api/minute-requests')!.body).toEqual({ minutes: 15, note: 'paid cash' });
    expect(await screen.findByText('Waiting for approval')).toBeTruthy();
  });

  test('request minutes: a rejected request says why, in words; one without a reason says nothing more', async () => {
    const { server, sessions } = farmer();
    const at = '2026-11-27T09:00:00Z';
    server.on(
      'GET /api/minute-requests',
      sessions.authed({
        body: [
          { id: 'r3', userId: KARIM.id, minutes: 60, note: '', status: 'REJECTED', rejectReason: 'WRONG_AMOUNT', createdAt: at },
          { id: 'r2', userId: KARIM.id, minutes: 900, note: '', status: 'REJECTED', rejectReason: 'TOO_MANY', createdAt: at },
          { id: 'r1', userId: KARIM.id, minutes: 30, note: '', status: 'REJECTED', rejectReason: null, createdAt: at },
          { id: 'r0', userId: KARIM.id, minutes: 30, note: '', status: 'REJECTED', createdAt: at },
        ],
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-request'));
    expect(await screen.findByTestId('my-request-r3-reason')).toHaveTextContent('Reason: The payment does not match the minutes asked');
    expect(screen.getByTestId('my-request-r2-reason')).toHaveTextContent('Reason: Ask for fewer minutes');
    // No reason given (null, or a server that does not send the field): only "Rejected".
    for (const id of ['r1', 'r0']) {
      expect(within(screen.getByTestId(`my-request-${id}`)).getByText('Rejected')).toBeTruthy();
      expect(screen.queryByTestId(`my-request-${id}-reason`)).toBeNull();
    }
  });

  test('request minutes: the reason of a rejection in Bangla', async () => {
    const { server, sessions } = farmer(idle(), { [KEYS.language]: 'bn' });
    server.on(
      'GET /api/minute-requests',
      sessions.authed({
        body: [
          { id: 'r2', userId: KARIM.id, minutes: 60, note: '', status: 'REJECTED', rejectReason: 'PUMP_CLOSED', createdAt: '2026-11-27T09:00:00Z' },
          { id: 'r1', userId: KARIM.id, minutes: 60, note: '', status: 'REJECTED', rejectReason: 'NOT_PAID', createdAt: '2026-11-27T08:00:00Z' },
        ],
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-request'));
    expect(await screen.findByTestId('my-request-r2-reason')).toHaveTextContent('কারণ: পাম্প আপাতত বন্ধ');
    expect(screen.getByTestId('my-request-r1-reason')).toHaveTextContent('কারণ: টাকা পাওয়া যায়নি');
  });

  test("request minutes: the form says the pump's limit and keeps to it", async () => {
    const { server, sessions } = farmer();
    server.on('GET /api/minute-requests', sessions.authed({ body: [] }));
    server.on('GET /api/terms', sessions.authed({ body: { maxRequestMinutes: 90, pricePerHourTaka: null } }));
    fireEvent.press(await screen.findByTestId('tab-request'));
    expect(await screen.findByTestId('request-limit')).toHaveTextContent('At most 90 min in one request; one request at a time.');
    // The presets above the limit are not offered.
    expect(screen.queryByText('2 h')).toBeNull();
    fireEvent.changeText(screen.getByTestId('request-minutes'), '700');
    fireEvent.press(screen.getByText('Send request'));
    expect(await screen.findByText('One request may ask for at most 90 min.')).toBeTruthy();
    expect(server.count('POST /api/minute-requests')).toBe(0);
  });

  test('usage history: each run with its times, charge and end reason', async () => {
    const { server, sessions } = farmer();
    server.on(
      'GET /api/usage',
      sessions.authed({
        body: [
          {
            entryId: 'e1',
            userId: KARIM.id,
            startedAt: '2026-11-27T08:00:00Z',
            endedAt: '2026-11-27T08:40:00Z',
            runningSeconds: 1800,
            heldSeconds: 600,
            chargedSeconds: 1800,
            endReason: 'BALANCE_EXHAUSTED',
          },
          {
            entryId: 'e0',
            userId: KARIM.id,
            startedAt: '2026-11-26T23:50:00Z',
            endedAt: '2026-11-27T00:20:00Z',
            runningSeconds: 1500,
            heldSeconds: 300,
            chargedSeconds: 1500,
            endReason: 'USER_STOP',
          },
        ],
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-history'));
    expect(await screen.findByText('27 Nov 2026 · 8:00 AM – 8:40 AM')).toBeTruthy();
    // A run across midnight says both days: it counts on the day it ended in the owner's usage.
    expect(screen.getByText('26 Nov 2026 · 11:50 PM – 27 Nov 2026 · 12:20 AM')).toBeTruthy();
    expect(screen.getByText('Ran 30 min')).toBeTruthy();
    expect(screen.getByText('Paused 10 min')).toBeTruthy();
    expect(screen.getByText('Charged 30 min')).toBeTruthy();
    expect(screen.getByText('Minutes ran out')).toBeTruthy();
  });
});

describe('roles', () => {
  test('a farmer gets farmer tabs and no admin screen', async () => {
    const { server } = farmer();
    await screen.findByText('IDLE');
    for (const id of ['home', 'queue', 'wallet', 'request', 'history', 'alerts']) expect(screen.getByTestId(`tab-${id}`)).toBeTruthy();
    for (const id of ['pump', 'admin-queue', 'users', 'requests', 'admins']) expect(screen.queryByTestId(`tab-${id}`)).toBeNull();
    expect(server.calls.some((c) => c.path.startsWith('/api/admin') || c.path.startsWith('/api/master'))).toBe(false);
  });

  test('an admin screen reached anyway shows a message and calls nothing', async () => {
    const { server, sessions } = newServer();
    const storage = signedInStorage(sessions, KARIM);
    render(
      <I18nProvider prefs={storage.prefs} initial="en">
        <AuthProvider storage={storage}>
          <Gate>
            <UsersScreen />
          </Gate>
        </AuthProvider>
      </I18nProvider>,
    );
    expect(await screen.findByText('This screen is for pump owners only.')).toBeTruthy();
    expect(server.count('GET /api/admin/users')).toBe(0);
  });
});

/** Renders children once the session is loaded. */
function Gate({ children }: { children: ReactNode }) {
  const { state } = useAuth();
  return state.phase === 'signedIn' ? <>{children}</> : null;
}

describe('Bangla', () => {
  test('switches words and digits, and is remembered', async () => {
    const { storage } = farmer(runningMine(725, 1797));
    await screen.findByText('RUNNING');
    fireEvent.press(screen.getByTestId('language'));
    expect(await screen.findByText('চলছে')).toBeTruthy();
    expect(screen.getByText('১২ মিনিট ৫ সেকেন্ড বাকি')).toBeTruthy();
    expect(screen.getByTestId('balance-value')).toHaveTextContent('২৯ মিনিট ৫৭ সেকেন্ড');
    expect(screen.getByText('বন্ধ করুন')).toBeTruthy();
    expect(screen.getByText('হোম')).toBeTruthy();
    await waitFor(async () => expect(await storage.prefs.get(KEYS.language)).toBe('bn'));
  });

  test('a remembered Bangla choice is used at the next start', async () => {
    farmer(idle(), { [KEYS.language]: 'bn' });
    expect(await screen.findByText('মোটর খালি আছে')).toBeTruthy();
    expect(screen.getByTestId('balance-value')).toHaveTextContent('৩০ মিনিট');
  });
});
