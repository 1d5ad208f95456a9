// The owner's tools in the app: add and rename a farmer, give and take RFID cards, register a
// device (its key shown once), the pump's terms, move a waiting farmer in line, and the last 14
// days' time pumped and cash taken.
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react-native';
import * as Print from 'expo-print';
import { Share, StyleSheet } from 'react-native';

import type { UserWithBalance } from '../src/api/types';
import { STRINGS } from '../src/i18n/strings';
import { daysStart } from '../src/ui/period';
import { CONFIRM_GUARD_MS } from '../src/ui/useConfirm';
import { newServer, renderApp, signedInStorage } from '../test/app';
import { ADMIN, KARIM, SALMA, entry, error, idle } from '../test/fakeServer';

// The phone's print dialog is native: here it only records the page it was given.
jest.mock('expo-print', () => ({ printAsync: jest.fn(async () => undefined) }));

/** Waits as a person does between reading "Tap again…" and tapping: past the double-tap guard. */
const deliberately = () => act(() => new Promise<void>((r) => setTimeout(r, CONFIRM_GUARD_MS + 50)));

function owner() {
  const { server, sessions } = newServer();
  const isAdmin = ['admin', 'master'] as const;
  server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
  server.on('GET /api/queue', sessions.authed({ body: { active: null, waiting: [] } }));
  const devices: object[] = [];
  server.on('GET /api/admin/devices', sessions.authed(() => ({ body: devices }), [...isAdmin]));
  const users: UserWithBalance[] = [{ ...KARIM, availableSeconds: 1800, availableMinutes: 30 }];
  server.on('GET /api/admin/users', sessions.authed(() => ({ body: users }), [...isAdmin]));
  let cards = [{ uid: '04A1B2C3', userId: KARIM.id, boundAt: '2026-11-27T08:00:00Z' }];
  server.on('GET /api/admin/cards', sessions.authed(() => ({ body: cards }), [...isAdmin]));
  server.on(
    'GET /api/admin/usage',
    sessions.authed(() => ({
      body: [
        { entryId: 'e1', userId: KARIM.id, startedAt: '2026-11-27T08:00:00Z', endedAt: '2026-11-27T08:30:00Z', runningSeconds: 1800, heldSeconds: 0, chargedSeconds: 1800, endReason: 'USER_STOP' },
        { entryId: 'e2', userId: KARIM.id, startedAt: '2026-11-28T08:00:00Z', endedAt: '2026-11-28T08:15:00Z', runningSeconds: 900, heldSeconds: 0, chargedSeconds: 900, endReason: 'USER_STOP' },
      ],
    })),
  );
  server.on(
    'GET /api/admin/receipts',
    sessions.authed(() => ({
      body: [
        { id: 'r1', number: 'R1', userId: KARIM.id, userName: KARIM.name, at: '2026-11-27T07:00:00Z', minutes: 60, cashTaka: 1500, recordedByName: ADMIN.name, void: null },
        // A mistake taken back: it counts for no cash.
        { id: 'r0', number: 'R0', userId: KARIM.id, userName: KARIM.name, at: '2026-11-27T06:00:00Z', minutes: 300, cashTaka: 600, recordedByName: ADMIN.name, void: { at: '2026-11-27T06:05:00Z', byName: ADMIN.name } },
      ],
    })),
  );
  server.on('GET /api/admin/terms', sessions.authed({ body: { maxRequestMinutes: 600, pricePerHourTaka: null } }, [...isAdmin]));
  renderApp(signedInStorage(sessions, ADMIN));
  return {
    server,
    sessions,
    users,
    devices,
    setCards: (next: typeof cards) => (cards = next),
  };
}

describe('owner tools in the app', () => {
  test('adds a farmer; a refused one keeps what was typed and says why', async () => {
    const { server, sessions, users } = owner();
    server.on(
      'POST /api/admin/users',
      sessions.authed((req) => {
        if (req.body.username === 'karim') return error(409, 'USERNAME_TAKEN', 'username is taken');
        const user = { ...SALMA, name: req.body.name, username: req.body.username };
        users.push({ ...user, availableSeconds: 0, availableMinutes: 0 });
        return { status: 201, body: user };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.changeText(await screen.findByTestId('new-farmer-name'), 'Salma Begum');
    fireEvent.changeText(screen.getByTestId('new-farmer-username'), 'karim');
    fireEvent.changeText(screen.getByTestId('new-farmer-password'), 'salma-password');
    fireEvent.press(screen.getByTestId('new-farmer-add'));
    expect(await screen.findByText('That username is taken.')).toBeTruthy();
    expect(screen.getByTestId('new-farmer-name').props.value).toBe('Salma Begum');
    fireEvent.changeText(screen.getByTestId('new-farmer-username'), '01711000002');
    fireEvent.press(screen.getByTestId('new-farmer-add'));
    expect(await screen.findByText('Salma Begum was added.')).toBeTruthy();
    expect(server.last('POST /api/admin/users')!.body).toEqual({ name: 'Salma Begum', username: '01711000002', password: 'salma-password' });
    expect(await screen.findByTestId('user-01711000002')).toBeTruthy();
    expect(screen.getByTestId('new-farmer-name').props.value).toBe('');
  });

  test('gives a card, and takes one away with a second tap', async () => {
    const { server, sessions, setCards } = owner();
    server.on(
      'POST /api/admin/users/{id}/rfid',
      sessions.authed((req) => ({ body: { uid: String(req.body.uid).toUpperCase(), userId: KARIM.id, boundAt: '2026-11-28T08:00:00Z' } })),
    );
    server.on(
      'DELETE /api/admin/cards/{uid}',
      sessions.authed(() => {
        setCards([]);
        return { status: 204 };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    expect(await screen.findByText('04A1B2C3')).toBeTruthy();
    fireEvent.changeText(screen.getByTestId('user-karim-uid'), 'deadbeef');
    fireEvent.press(screen.getByTestId('user-karim-bind'));
    expect(await screen.findByText('Card DEADBEEF now belongs to Karim Mia.')).toBeTruthy();
    expect(server.calls.find((c) => c.method === 'POST' && c.path === `/api/admin/users/${KARIM.id}/rfid`)!.body).toEqual({ uid: 'deadbeef' });
    fireEvent.press(screen.getByTestId('card-04A1B2C3-remove'));
    expect(server.count('DELETE /api/admin/cards/04A1B2C3')).toBe(0);
    fireEvent.press(await screen.findByText('Tap again to remove'));
    expect(server.count('DELETE /api/admin/cards/04A1B2C3')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByText('Tap again to remove'));
    expect(await screen.findByText('Card 04A1B2C3 was removed. It no longer starts the pump.')).toBeTruthy();
    expect(server.count('DELETE /api/admin/cards/04A1B2C3')).toBe(1);
    await waitFor(() => expect(screen.queryByTestId('card-04A1B2C3-remove')).toBeNull());
  });

  test('registers a device and shows its key once; shows the last 14 days', async () => {
    const { server, sessions, devices } = owner();
    server.on(
      'POST /api/admin/devices',
      sessions.authed((req) => {
        devices.push({ id: 'd1', name: req.body.name, online: false, lastSeenAt: null, loadShedding: false, ready: false, relay: false });
        return { status: 201, body: { id: 'd1', name: req.body.name, deviceKey: 'pp_dev_secret', linkSecret: 'pp_link_secret' } };
      }),
    );
    expect(await screen.findByText('No device is registered yet. Register the one at the pump below.')).toBeTruthy();
    expect(await screen.findByTestId('usage-total')).toHaveTextContent('Pumped 45 min');
    expect(screen.getByTestId('usage-cash')).toHaveTextContent('Cash taken 1,500 taka');
    expect(screen.getByTestId('usage-Karim Mia')).toHaveTextContent('Karim Mia: 45 min');
    fireEvent.changeText(screen.getByTestId('device-name'), 'Field pump');
    fireEvent.press(screen.getByTestId('device-register'));
    expect(await screen.findByTestId('device-key')).toHaveTextContent('pp_dev_secret');
    // Everything the device's setup page asks for: its id, its key and its link secret.
    expect(screen.getByTestId('device-id')).toHaveTextContent('d1');
    expect(screen.getByTestId('device-link-secret')).toHaveTextContent('pp_link_secret');
    expect(screen.getByText('Put the key and the secret in the device now (its setup page). They are shown only this once.')).toBeTruthy();
    expect(server.last('POST /api/admin/devices')!.body).toEqual({ name: 'Field pump' });
    expect(await screen.findByTestId('device-d1')).toBeTruthy();
  });
});

describe('owner tools in the app: cash and passwords', () => {
  test('a recharge records the cash taken and says the receipt; at the price when left empty', async () => {
    const { server, sessions, users } = owner();
    server.on(
      'POST /api/admin/recharge',
      sessions.authed((req) => {
        const u = users[0]!;
        u.availableSeconds += req.body.minutes * 60;
        const receipt = req.body.cashTaka === undefined ? 'r-price' : 'r-typed';
        return { body: { userId: u.id, name: u.name, availableSeconds: u.availableSeconds, availableMinutes: 0, receiptId: receipt } };
      }),
    );
    const receipt = (id: string, cashTaka: number) => ({ id, number: id.toUpperCase(), userId: KARIM.id, userName: KARIM.name, at: '2026-11-28T08:00:00Z', minutes: 30, cashTaka, recordedByName: ADMIN.name });
    server.on(
      'GET /api/admin/receipts/{id}',
      sessions.authed((req) => ({ body: req.path.endsWith('r-typed') ? receipt('r-typed', 100) : receipt('r-price', 75) })),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-cash'), 'abc');
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    expect(await screen.findByText('Cash: whole taka, like 150, or empty.')).toBeTruthy();
    expect(server.count('POST /api/admin/recharge')).toBe(0);
    fireEvent.changeText(screen.getByTestId('user-karim-cash'), '100');
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    expect(await screen.findByText('✓ +30 min added. Karim Mia now has 1 h. Receipt: 100 taka.')).toBeTruthy();
    expect(server.last('POST /api/admin/recharge')!.body).toEqual({ userId: KARIM.id, minutes: 30, note: null, cashTaka: 100 });
    fireEvent.press(screen.getByTestId('user-karim-preset-30'));
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    expect(await screen.findByText('✓ +30 min added. Karim Mia now has 1 h 30 min. Receipt: 75 taka.')).toBeTruthy();
    expect(server.last('POST /api/admin/recharge')!.body).toEqual({ userId: KARIM.id, minutes: 30, note: null });
  });

  test('a recharge shows its receipt, in the farmer’s language, shared as text and printed', async () => {
    const { server, sessions, users } = owner();
    server.on(
      'POST /api/admin/recharge',
      sessions.authed((req) => {
        const u = users[0]!;
        u.availableSeconds += req.body.minutes * 60;
        return { body: { userId: u.id, name: u.name, availableSeconds: u.availableSeconds, availableMinutes: 0, receiptId: '0a1b2c3d-receipt' } };
      }),
    );
    server.on(
      'GET /api/admin/receipts/{id}',
      sessions.authed({ body: { id: '0a1b2c3d-receipt', number: '0A1B-2C3D-4E5F', userId: KARIM.id, userName: KARIM.name, at: '2026-11-28T08:00:00Z', minutes: 60, cashTaka: 150, recordedByName: ADMIN.name } }),
    );
    const share = jest.spyOn(Share, 'share').mockResolvedValue({ action: Share.sharedAction });
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    expect(screen.queryByTestId('user-karim-receipt')).toBeNull();
    fireEvent.changeText(screen.getByTestId('user-karim-minutes'), '60');
    fireEvent.changeText(screen.getByTestId('user-karim-cash'), '150');
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    const card = await screen.findByTestId('user-karim-receipt');
    expect(within(card).getByText('Karim Mia')).toBeTruthy();
    expect(within(card).getByText('150 taka')).toBeTruthy();
    expect(within(card).getByText('0A1B-2C3D-4E5F')).toBeTruthy();
    // Karim reads Bangla: the receipt in Bangla, digits too, then shared.
    fireEvent.press(within(card).getByTestId('user-karim-receipt-language-bn'));
    expect(await within(card).findByText('১৫০ টাকা')).toBeTruthy();
    fireEvent.press(within(card).getByTestId('user-karim-receipt-share'));
    expect(await screen.findByText('The receipt was shared.')).toBeTruthy();
    expect(share).toHaveBeenCalledTimes(1);
    const sent = share.mock.calls[0]![0] as { message: string; title: string };
    expect(sent.title).toBe('রসিদ');
    expect(sent.message.split('\n')).toEqual([
      'পাম্পপাইলট — রসিদ',
      'কৃষক: Karim Mia',
      expect.stringMatching(/^তারিখ: .*২৮/),
      'যোগ করা মিনিট: ৬০\u00a0মিনিট',
      'নগদ দেওয়া: ১৫০ টাকা',
      `গ্রহণকারী: ${ADMIN.name}`,
      'রসিদ নং: 0A1B-2C3D-4E5F',
    ]);
    // A phone that cannot share says so.
    share.mockRejectedValueOnce(new Error('not supported'));
    fireEvent.press(within(card).getByTestId('user-karim-receipt-share'));
    expect(await screen.findByText('This phone cannot share from here: show the receipt or copy its text.')).toBeTruthy();
    share.mockRestore();

    // Printed: the page the phone's print dialog gets is the receipt, in the language chosen.
    const printAsync = jest.mocked(Print.printAsync);
    fireEvent.press(within(card).getByTestId('user-karim-receipt-print'));
    await waitFor(() => expect(printAsync).toHaveBeenCalledTimes(1));
    const { html } = printAsync.mock.calls[0]![0] as { html: string };
    expect(html).toContain('<html lang="bn">');
    expect(html).toContain('<h1>পাম্পপাইলট — রসিদ</h1>');
    expect(html).toContain('<tr><th>কৃষক</th><td>Karim Mia</td></tr>');
    expect(html).toContain('<tr><th>নগদ দেওয়া</th><td>১৫০ টাকা</td></tr>');
    expect(html).toContain('<tr><th>রসিদ নং</th><td>0A1B-2C3D-4E5F</td></tr>');
    expect(html).not.toContain('class="void"');
    expect(screen.queryByText(STRINGS.en.printUnavailable)).toBeNull();
    // A phone with no way to print says so; a print the owner cancelled (iOS rejects it) says nothing.
    printAsync.mockRejectedValueOnce(new Error('no print service'));
    fireEvent.press(within(card).getByTestId('user-karim-receipt-print'));
    expect(await screen.findByText(STRINGS.en.printUnavailable)).toBeTruthy();
    printAsync.mockRejectedValueOnce(Object.assign(new Error('Printing did not complete'), { code: 'ERR_PRINT_INCOMPLETE' }));
    fireEvent.press(within(card).getByTestId('user-karim-receipt-print'));
    await waitFor(() => expect(printAsync).toHaveBeenCalledTimes(3));
    await waitFor(() => expect(screen.queryByText(STRINGS.en.printUnavailable)).toBeNull());
  });

  test('a mistaken recharge is voided from its receipt, on a second tap, and the receipt says VOID', async () => {
    const { server, sessions, users } = owner();
    const made = { id: 'r-300', number: '0A1B-2C3D-4E5F', userId: KARIM.id, userName: KARIM.name, at: '2026-11-28T08:00:00Z', minutes: 300, cashTaka: 600, recordedByName: ADMIN.name, void: null };
    server.on(
      'POST /api/admin/recharge',
      sessions.authed((req) => {
        const u = users[0]!;
        u.availableSeconds += req.body.minutes * 60;
        return { body: { userId: u.id, name: u.name, availableSeconds: u.availableSeconds, availableMinutes: 0, receiptId: made.id } };
      }),
    );
    server.on('GET /api/admin/receipts/{id}', sessions.authed({ body: made }));
    let voids = 0;
    server.on(
      'POST /api/admin/receipts/{id}/void',
      sessions.authed(() => {
        if (++voids > 1) return error(409, 'ALREADY_VOID');
        users[0]!.availableSeconds -= 300 * 60;
        return { body: { ...made, void: { at: '2026-11-28T08:01:00Z', byName: ADMIN.name } } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.changeText(screen.getByTestId('user-karim-minutes'), '300');
    fireEvent.press(screen.getByTestId('user-karim-recharge'));
    const card = await screen.findByTestId('user-karim-receipt');
    expect(within(card).queryByTestId('user-karim-receipt-void')).toBeNull();
    fireEvent.press(screen.getByTestId('user-karim-void'));
    expect(await screen.findByText('Tap again: 300 min are taken back from Karim Mia')).toBeTruthy();
    expect(server.count('POST /api/admin/receipts/r-300/void')).toBe(0);
    await deliberately();
    fireEvent.press(screen.getByTestId('user-karim-void'));
    expect(await screen.findByText('Receipt 0A1B-2C3D-4E5F is void: 300 min were taken back from Karim Mia.')).toBeTruthy();
    expect(server.count('POST /api/admin/receipts/r-300/void')).toBe(1);
    expect(within(screen.getByTestId('user-karim-receipt')).getByTestId('user-karim-receipt-void')).toHaveTextContent('VOID');
    expect(screen.queryByTestId('user-karim-void')).toBeNull();
    expect(await screen.findByTestId('user-karim-balance')).toHaveTextContent('30 min');
  });

  test('a farmer’s receipts of the last 90 days: listed on a tap, one opened to share, print or void, the list read again after', async () => {
    const { server, sessions, users } = owner();
    const kept = { id: 'r-1', number: '0A1B-0000-0001', userId: KARIM.id, userName: KARIM.name, at: '2026-11-20T08:00:00Z', minutes: 60, cashTaka: 150, recordedByName: ADMIN.name, void: null };
    const voided = { ...kept, id: 'r-2', number: '0A1B-0000-0002', at: '2026-11-21T08:00:00Z', minutes: 30, cashTaka: 75, void: { at: '2026-11-21T08:05:00Z', byName: ADMIN.name } };
    let listed: object[] = [voided, kept];
    server.on('GET /api/admin/receipts', sessions.authed(() => ({ body: listed })));
    server.on(
      'POST /api/admin/receipts/{id}/void',
      sessions.authed((req) => {
        expect(req.path).toBe('/api/admin/receipts/r-1/void');
        users[0]!.availableSeconds -= 60 * 60;
        const now = { ...kept, void: { at: '2026-11-28T09:00:00Z', byName: ADMIN.name } };
        listed = [voided, now];
        return { body: now };
      }),
    );
    users[0]!.availableSeconds = 90 * 60;
    const reads = () => server.calls.filter((c) => c.path === '/api/admin/receipts' && c.query.get('userId'));
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    // Read only when asked for.
    expect(reads()).toHaveLength(0);
    fireEvent.press(screen.getByTestId('user-karim-receipts-show'));
    const row = await screen.findByTestId('user-karim-receipts-0A1B-0000-0001');
    expect(reads()).toHaveLength(1);
    expect(reads()[0]!.query.get('userId')).toBe(KARIM.id);
    expect(reads()[0]!.query.get('from')).toBe(daysStart(90));
    expect(row).toHaveTextContent(/60 min · 150 taka$/);
    expect(screen.getByTestId('user-karim-receipts-0A1B-0000-0002')).toHaveTextContent(/30 min · 75 taka · VOID$/);

    // Opened: the receipt card, to share or print, and a mistake found later is voided from it.
    fireEvent.press(row);
    const card = await screen.findByTestId('user-karim-receipt');
    expect(within(card).getByText('0A1B-0000-0001')).toBeTruthy();
    expect(within(card).getByTestId('user-karim-receipt-print')).toBeTruthy();
    fireEvent.press(screen.getByTestId('user-karim-void'));
    expect(await screen.findByText('Tap again: 60 min are taken back from Karim Mia')).toBeTruthy();
    // Another receipt opened forgets the question: a tap on it only asks.
    fireEvent.press(screen.getByTestId('user-karim-receipts-0A1B-0000-0002'));
    expect(await within(screen.getByTestId('user-karim-receipt')).findByText('0A1B-0000-0002')).toBeTruthy();
    expect(screen.queryByTestId('user-karim-void')).toBeNull();
    fireEvent.press(screen.getByTestId('user-karim-receipts-0A1B-0000-0001'));
    await deliberately();
    fireEvent.press(await screen.findByTestId('user-karim-void'));
    expect(await screen.findByText('Tap again: 60 min are taken back from Karim Mia')).toBeTruthy();
    await deliberately();
    fireEvent.press(screen.getByTestId('user-karim-void'));
    expect(await screen.findByText('Receipt 0A1B-0000-0001 is void: 60 min were taken back from Karim Mia.')).toBeTruthy();
    expect(server.count('POST /api/admin/receipts/r-1/void')).toBe(1);
    // The list is read again and marks it.
    await waitFor(() => expect(screen.getByTestId('user-karim-receipts-0A1B-0000-0001')).toHaveTextContent(/VOID$/));
    expect(reads()).toHaveLength(2);
  });

  test('a farmer with no receipt in the last 90 days is told so', async () => {
    const { server, sessions } = owner();
    server.on('GET /api/admin/receipts', sessions.authed({ body: [] }));
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.press(screen.getByTestId('user-karim-receipts-show'));
    expect(await screen.findByText('No receipts in the last 90 days.')).toBeTruthy();
    expect(screen.getByTestId('user-karim-receipts-show')).toHaveTextContent('Hide the receipts');
    fireEvent.press(screen.getByTestId('user-karim-receipts-show'));
    expect(screen.queryByTestId('user-karim-receipts')).toBeNull();
  });

  test('a new password takes a second tap and is shown once', async () => {
    const { server, sessions } = owner();
    server.on('POST /api/admin/users/{id}/password', sessions.authed({ body: { userId: KARIM.id, name: KARIM.name, username: KARIM.username, password: 'k7mq2xw9pd' } }));
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    fireEvent.press(screen.getByTestId('user-karim-password'));
    expect(server.calls.filter((c) => c.path.endsWith('/password'))).toHaveLength(0);
    fireEvent.press(await screen.findByText('Tap again: the old password stops working'));
    expect(server.calls.filter((c) => c.path.endsWith('/password'))).toHaveLength(0);
    await deliberately();
    fireEvent.press(screen.getByText('Tap again: the old password stops working'));
    expect(await screen.findByText('New password for Karim Mia: k7mq2xw9pd — give it now; it is not shown again.')).toBeTruthy();
    expect(server.calls.filter((c) => c.path === `/api/admin/users/${KARIM.id}/password`)).toHaveLength(1);
  });
  test('renames a farmer; a refused name is said in words and stays to be put right', async () => {
    const { server, sessions, users } = owner();
    server.on(
      'PATCH /api/admin/users/{id}',
      sessions.authed((req) => {
        const name = String(req.body.name).trim();
        if (!name || name.length > 80) return error(400, 'VALIDATION', 'name: 1 to 80 characters');
        users[0] = { ...users[0]!, name };
        return { body: { ...KARIM, name } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    expect(screen.getByTestId('user-karim-name').props.value).toBe('Karim Mia');
    fireEvent.changeText(screen.getByTestId('user-karim-name'), '   ');
    fireEvent.press(screen.getByTestId('user-karim-rename'));
    expect(await screen.findByText('Please check what you entered. Name: 1 to 80 letters.')).toBeTruthy();
    expect(server.last('PATCH /api/admin/users/u1')!.body).toEqual({ name: '' });
    expect(screen.getByTestId('user-karim-name').props.value).toBe('   ');
    expect(users[0]!.name).toBe('Karim Mia');
    fireEvent.changeText(screen.getByTestId('user-karim-name'), '  Karim Mia (north field) ');
    fireEvent.press(screen.getByTestId('user-karim-rename'));
    expect(await screen.findByText('The name is now Karim Mia (north field).')).toBeTruthy();
    expect(server.last('PATCH /api/admin/users/u1')!.body).toEqual({ name: 'Karim Mia (north field)' });
    expect(server.count('PATCH /api/admin/users/u1')).toBe(2);
    // The list is read again and shows the new name.
    expect(await screen.findByText('Karim Mia (north field)')).toBeTruthy();
  });
  test('enrols a feature-phone farmer’s number: the code to text from it is shown, the number waits', async () => {
    const { server, sessions } = owner();
    server.on(
      'PUT /api/admin/users/{id}/phone',
      sessions.authed((req) => {
        const phone = String(req.body.phone);
        if (!/^\+[1-9][0-9]{7,14}$/.test(phone)) return error(400, 'VALIDATION', 'phone: E.164, like +8801711000000');
        return { body: { phone: null, pendingPhone: phone, phoneCode: '482106', pendingSince: '2026-12-05T03:00:00Z', language: req.body.language, smsNumber: '+8801900000000' } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    const sms = screen.getByTestId('user-karim-sms');
    expect(within(sms).getByTestId('user-karim-phone-save').props.accessibilityState?.disabled).toBe(true);
    fireEvent.changeText(within(sms).getByTestId('user-karim-phone'), '01711000001');
    fireEvent.press(within(sms).getByTestId('user-karim-phone-save'));
    expect(await within(sms).findByText('Please check what you entered. Phone: with the country code, like +8801711000000.')).toBeTruthy();
    expect(within(sms).getByTestId('user-karim-phone').props.value).toBe('01711000001');
    fireEvent.changeText(within(sms).getByTestId('user-karim-phone'), ' +8801711000001 ');
    fireEvent.press(within(sms).getByTestId('user-karim-phone-language-en'));
    fireEvent.press(within(sms).getByTestId('user-karim-phone-save'));
    expect(
      await within(sms).findByText(
        '+8801711000001 is waiting to be confirmed: it gets nothing until then. From Karim Mia’s phone, send 482106 to +8801900000000.',
      ),
    ).toBeTruthy();
    expect(server.last('PUT /api/admin/users/u1/phone')!.body).toEqual({ phone: '+8801711000001', language: 'en' });
  });
  test('a farmer’s confirmed number says what they may text from it, for the owner to read out', async () => {
    const { server, sessions } = owner();
    server.on(
      'GET /api/admin/users/{id}/phone',
      sessions.authed(() => ({
        body: { phone: '+8801711000001', pendingPhone: null, phoneCode: null, pendingSince: null, droppedPhone: null, language: 'bn', smsNumber: '+8801900000000' },
      })),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    expect(await screen.findByTestId('user-karim-phone-confirmed')).toHaveTextContent(/^Confirmed phone: \+8801711000001\./);
    const commands = screen.getByTestId('user-karim-phone-commands');
    expect(commands).toHaveTextContent(/^Karim Mia can now text \+8801900000000:/);
    expect(commands).toHaveTextContent(/BAL — your balance and place in line/);
  });

  test('the owner’s own confirmed phone says it may text STATUS and STOP with a run’s number, not a farmer’s commands', async () => {
    const { server, sessions } = owner();
    server.on('GET /api/notifications', sessions.authed({ body: { unread: 0, notifications: [] } }));
    server.on(
      'GET /api/alerts/profile',
      sessions.authed({
        body: { phone: '+8801711000010', pendingPhone: null, phoneCode: null, pendingSince: null, droppedPhone: null, language: 'en', pushTokens: [], muted: [], quietHours: null, smsNumber: '+8801900000000' },
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-alerts'));
    const commands = await screen.findByTestId('alerts-phone-commands');
    expect(commands).toHaveTextContent(/^From it, text \+8801900000000:/);
    expect(commands).toHaveTextContent(/STATUS — the pump at a glance: who pumps, the line, requests, the device/);
    expect(commands).toHaveTextContent(/STOP 4821 — stop the run STATUS names by that number/);
    expect(commands).toHaveTextContent(/OK 3817 — approve the request STATUS names by that number; NO 3817 rejects it/);
    expect(commands).toHaveTextContent(/NO 3817 UNPAID — reject it and say why: UNPAID, AMOUNT \(does not match\), LESS \(ask for fewer\) or CLOSED$/);
    expect(screen.getByTestId('alerts-phone-commands')).not.toHaveTextContent(/START/);
  });

  test('a farmer’s number dropped after too many wrong codes says why, until it is enrolled again', async () => {
    const { server, sessions } = owner();
    let dropped: string | null = '+8801711000001';
    server.on(
      'GET /api/admin/users/{id}/phone',
      sessions.authed(() => ({
        body: { phone: null, pendingPhone: null, phoneCode: null, pendingSince: null, droppedPhone: dropped, language: 'bn', smsNumber: null },
      })),
    );
    server.on(
      'PUT /api/admin/users/{id}/phone',
      sessions.authed((req) => {
        dropped = null;
        return { body: { phone: null, pendingPhone: req.body.phone, phoneCode: '482106', pendingSince: '2026-12-05T03:00:00Z', droppedPhone: null, language: req.body.language, smsNumber: null } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-users'));
    fireEvent.press(await screen.findByTestId('user-karim-open'));
    expect(await screen.findByTestId('user-karim-phone-dropped')).toHaveTextContent(
      'Too many wrong codes were texted from +8801711000001: it was dropped. Save the number again for a new code.',
    );
    const sms = screen.getByTestId('user-karim-sms');
    fireEvent.changeText(within(sms).getByTestId('user-karim-phone'), '+8801711000001');
    fireEvent.press(within(sms).getByTestId('user-karim-phone-save'));
    expect(await within(sms).findByText(/send 482106/)).toBeTruthy();
    await waitFor(() => expect(screen.queryByTestId('user-karim-phone-dropped')).toBeNull());
  });

  test('sets the pump terms; a refused value is said in words and stays to be put right', async () => {
    const { server, sessions } = owner();
    let terms: { maxRequestMinutes: number; pricePerHourTaka: number | null } = { maxRequestMinutes: 480, pricePerHourTaka: 90 };
    server.on('GET /api/admin/terms', sessions.authed(() => ({ body: terms })));
    server.on(
      'PUT /api/admin/terms',
      sessions.authed((req) => {
        const m = req.body.maxRequestMinutes;
        if (m < 1 || m > 10080) return error(400, 'VALIDATION', 'maxRequestMinutes: from 1 to 10080');
        terms = { maxRequestMinutes: m, pricePerHourTaka: req.body.pricePerHourTaka };
        return { body: terms };
      }),
    );
    // The fields start from the terms in force.
    await waitFor(() => expect(screen.getByTestId('terms-max').props.value).toBe('480'));
    expect(screen.getByTestId('terms-price').props.value).toBe('90');
    // Not a number: said here, nothing sent.
    fireEvent.changeText(screen.getByTestId('terms-price'), 'a lot');
    fireEvent.press(screen.getByTestId('terms-save'));
    expect(await screen.findByText('Type whole numbers, like 600 minutes and 120 taka; leave the price empty for none.')).toBeTruthy();
    expect(server.count('PUT /api/admin/terms')).toBe(0);
    // Out of range: the server refuses, the owner reads why, the value stays.
    fireEvent.changeText(screen.getByTestId('terms-max'), '20000');
    fireEvent.changeText(screen.getByTestId('terms-price'), '120');
    fireEvent.press(screen.getByTestId('terms-save'));
    expect(await screen.findByText('Please check what you entered. Most minutes: from 1 to 10080 (a week).')).toBeTruthy();
    expect(server.last('PUT /api/admin/terms')!.body).toEqual({ maxRequestMinutes: 20000, pricePerHourTaka: 120 });
    expect(screen.getByTestId('terms-max').props.value).toBe('20000');
    expect(terms).toEqual({ maxRequestMinutes: 480, pricePerHourTaka: 90 });
    fireEvent.changeText(screen.getByTestId('terms-max'), '240');
    fireEvent.press(screen.getByTestId('terms-save'));
    expect(await screen.findByText('Saved: a request may ask for up to 240 min; 120 taka an hour.')).toBeTruthy();
    expect(server.last('PUT /api/admin/terms')!.body).toEqual({ maxRequestMinutes: 240, pricePerHourTaka: 120 });
    // An empty price is no price (null), as on the web dashboard.
    fireEvent.changeText(screen.getByTestId('terms-price'), ' ');
    fireEvent.press(screen.getByTestId('terms-save'));
    expect(await screen.findByText('Saved: a request may ask for up to 240 min; no price.')).toBeTruthy();
    expect(server.last('PUT /api/admin/terms')!.body).toEqual({ maxRequestMinutes: 240, pricePerHourTaka: null });
  });
  test('moves a waiting farmer in line with a reason; a refused one is said in words and stays', async () => {
    const { server, sessions } = owner();
    let waiting = [
      entry({ id: 'e1', userId: KARIM.id, userName: KARIM.name, status: 'WAITING', position: 1, remainingSeconds: null }),
      entry({ id: 'e2', userId: SALMA.id, userName: SALMA.name, status: 'WAITING', position: 2, remainingSeconds: null }),
    ];
    server.on('GET /api/queue', sessions.authed(() => ({ body: { active: null, waiting } })));
    server.on(
      'POST /api/admin/queue/{userId}/move',
      sessions.authed((req) => {
        if (!String(req.body.reason).trim()) return error(400, 'VALIDATION', 'reason: say why, in 1 to 500 characters');
        if (req.body.position < 1) return error(400, 'VALIDATION', 'position: 1 or more');
        const moving = waiting.find((e) => req.path === `/api/admin/queue/${e.userId}/move`)!;
        const rest = waiting.filter((e) => e !== moving);
        rest.splice(Math.min(req.body.position, waiting.length) - 1, 0, moving);
        waiting = rest.map((e, n) => ({ ...e, position: n + 1 }));
        return { body: { active: null, waiting } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-admin-queue'));
    expect(await screen.findByTestId('move-waiting')).toBeTruthy();
    // Nobody is chosen for the owner: the move waits for a choice.
    for (const u of [KARIM, SALMA]) expect(screen.getByTestId(`move-who-${u.id}`).props.accessibilityState).toEqual({ selected: false });
    expect(within(screen.getByTestId('move-waiting')).getByText('Choose the farmer first.')).toBeTruthy();
    expect(screen.getByTestId('move-go')).toBeDisabled();
    fireEvent.press(screen.getByTestId('move-go'));
    expect(server.calls.filter((c) => c.path.endsWith('/move'))).toHaveLength(0);
    fireEvent.press(screen.getByTestId(`move-who-${SALMA.id}`));
    expect(screen.getByTestId(`move-who-${SALMA.id}`).props.accessibilityState).toEqual({ selected: true });
    // No reason: the server refuses, the place typed stays.
    fireEvent.press(screen.getByTestId('move-go'));
    expect(await screen.findByText('Please check what you entered. Say why, in a few words.')).toBeTruthy();
    expect(server.last(`POST /api/admin/queue/${SALMA.id}/move`)!.body).toEqual({ position: 1, reason: '' });
    fireEvent.changeText(screen.getByTestId('move-place'), '0');
    fireEvent.changeText(screen.getByTestId('move-reason'), 'sick child at home');
    fireEvent.press(screen.getByTestId('move-go'));
    expect(await screen.findByText('Please check what you entered. Place in line: 1 or more (1 is next).')).toBeTruthy();
    expect(screen.getByTestId('move-place').props.value).toBe('0');
    expect(screen.getByTestId('move-reason').props.value).toBe('sick child at home');
    // Not a number: said here, nothing sent.
    fireEvent.changeText(screen.getByTestId('move-place'), 'first');
    fireEvent.press(screen.getByTestId('move-go'));
    expect(await screen.findByText('Type the new place as a whole number, like 1 for next, and say why.')).toBeTruthy();
    expect(server.calls.filter((c) => c.path.endsWith('/move'))).toHaveLength(2);
    fireEvent.changeText(screen.getByTestId('move-place'), '1');
    fireEvent.press(screen.getByTestId('move-go'));
    // Said beside the form's button.
    expect(await within(screen.getByTestId('move-waiting')).findByText('Salma Begum is now number 1 in line.')).toBeTruthy();
    expect(server.last(`POST /api/admin/queue/${SALMA.id}/move`)!.body).toEqual({ position: 1, reason: 'sick child at home' });
    // The line is read again in its new order.
    await waitFor(() => expect(screen.getByTestId('queue-waiting-1')).toHaveTextContent(/Salma Begum/));
    expect(screen.getByTestId('queue-waiting-2')).toHaveTextContent(/Karim Mia/);
    expect(screen.getByTestId('move-reason').props.value).toBe('');
    // The next move is chosen afresh: nobody is picked for the owner.
    for (const u of [KARIM, SALMA]) expect(screen.getByTestId(`move-who-${u.id}`).props.accessibilityState).toEqual({ selected: false });
    expect(screen.getByTestId('move-go')).toBeDisabled();
  });
  test('takes a waiting farmer out of the line with a reason, after a second tap', async () => {
    const { server, sessions } = owner();
    let waiting = [
      entry({ id: 'e1', userId: KARIM.id, userName: KARIM.name, status: 'WAITING', position: 1, remainingSeconds: null }),
      entry({ id: 'e2', userId: SALMA.id, userName: SALMA.name, status: 'WAITING', position: 2, remainingSeconds: null }),
    ];
    server.on('GET /api/queue', sessions.authed(() => ({ body: { active: null, waiting } })));
    server.on(
      'POST /api/admin/queue/{userId}/remove',
      sessions.authed((req) => {
        if (req.body.reason === 'gone') return error(404, 'NOT_FOUND', 'not waiting');
        const leaving = waiting.find((e) => req.path === `/api/admin/queue/${e.userId}/remove`)!;
        waiting = waiting.filter((e) => e !== leaving).map((e, n) => ({ ...e, position: n + 1 }));
        return { body: { ...leaving, status: 'COMPLETED', position: null } };
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-admin-queue'));
    expect(await screen.findByTestId('remove-waiting')).toBeTruthy();
    // Of two waiting, nobody is picked for the owner.
    expect(screen.getByTestId('remove-go')).toBeDisabled();
    fireEvent.press(screen.getByTestId(`remove-who-${SALMA.id}`));
    // No reason: said here, nothing sent.
    fireEvent.press(screen.getByTestId('remove-go'));
    expect(await screen.findByText('Say why the farmer leaves the line.')).toBeTruthy();
    fireEvent.changeText(screen.getByTestId('remove-reason'), 'not at the field');
    fireEvent.press(screen.getByTestId('remove-go'));
    // The first tap only asks, and so does a double tap.
    expect(await screen.findByText('Tap again: Salma Begum leaves the line')).toBeTruthy();
    fireEvent.press(screen.getByTestId('remove-go'));
    expect(server.calls.filter((c) => c.path.endsWith('/remove'))).toHaveLength(0);
    // Another farmer chosen: the first tap was about Salma, so it asks again.
    fireEvent.press(screen.getByTestId(`remove-who-${KARIM.id}`));
    expect(screen.getByTestId('remove-go')).toHaveTextContent('Take out of the line');
    fireEvent.press(screen.getByTestId(`remove-who-${SALMA.id}`));
    fireEvent.press(screen.getByTestId('remove-go'));
    await deliberately();
    fireEvent.press(screen.getByTestId('remove-go'));
    expect(await screen.findByText('Salma Begum was taken out of the line. Their minutes are kept.')).toBeTruthy();
    expect(server.last(`POST /api/admin/queue/${SALMA.id}/remove`)!.body).toEqual({ reason: 'not at the field' });
    await waitFor(() => expect(screen.queryByTestId('queue-waiting-2')).toBeNull());
    expect(screen.getByTestId('queue-waiting-1')).toHaveTextContent(/Karim Mia/);
    expect(screen.getByTestId('remove-reason').props.value).toBe('');
    // Refused (no longer waiting): said in words, what was typed stays. The one left waiting is
    // the one the form is about.
    fireEvent.changeText(screen.getByTestId('remove-reason'), 'gone');
    fireEvent.press(screen.getByTestId('remove-go'));
    await deliberately();
    fireEvent.press(await screen.findByText('Tap again: Karim Mia leaves the line'));
    expect(await screen.findByText(/not found|no longer/i)).toBeTruthy();
    expect(screen.getByTestId('remove-reason').props.value).toBe('gone');
  });

  test('in Bangla: a refused term is said in Bangla, and Bangla digits are read', async () => {
    const { server, sessions } = owner();
    server.on(
      'PUT /api/admin/terms',
      sessions.authed((req) =>
        req.body.maxRequestMinutes > 10080
          ? error(400, 'VALIDATION', 'maxRequestMinutes: from 1 to 10080')
          : { body: { maxRequestMinutes: req.body.maxRequestMinutes, pricePerHourTaka: req.body.pricePerHourTaka } },
      ),
    );
    fireEvent.press(await screen.findByTestId('language'));
    await waitFor(() => expect(screen.getByTestId('terms-max').props.value).toBe('600'));
    fireEvent.changeText(screen.getByTestId('terms-max'), '২০০০০');
    fireEvent.press(screen.getByTestId('terms-save'));
    expect(await screen.findByText('যা লিখেছেন তা আবার দেখুন। সর্বোচ্চ মিনিট: ১ থেকে ১০০৮০ (এক সপ্তাহ)।')).toBeTruthy();
    expect(server.last('PUT /api/admin/terms')!.body).toEqual({ maxRequestMinutes: 20000, pricePerHourTaka: null });
    expect(screen.getByTestId('terms-max').props.value).toBe('২০০০০');
  });
});

describe('owner tools in the app: the queue on a small phone, in Bangla', () => {
  test('a long name in a choice wraps inside its chip instead of running off the screen', async () => {
    const { server, sessions } = owner();
    const LONG = 'মোহাম্মদ আব্দুল করিম চৌধুরী ভূঁইয়া তালুকদার সরকার শেখ মোল্লা খন্দকার';
    server.on(
      'GET /api/queue',
      sessions.authed({
        body: {
          active: null,
          waiting: [
            entry({ id: 'e1', userId: KARIM.id, userName: LONG, status: 'WAITING', position: 1, remainingSeconds: null }),
            entry({ id: 'e2', userId: SALMA.id, userName: SALMA.name, status: 'WAITING', position: 2, remainingSeconds: null }),
          ],
        },
      }),
    );
    fireEvent.press(await screen.findByTestId('tab-admin-queue'));
    const chip = await screen.findByTestId(`move-who-${KARIM.id}`);
    // The chip is at most as wide as the form and may shrink; its words may break onto lines.
    expect(StyleSheet.flatten(chip.props.style)).toEqual(expect.objectContaining({ maxWidth: '100%', flexShrink: 1 }));
    expect(StyleSheet.flatten(within(chip).getByText(`1. ${LONG}`).props.style)).toEqual(expect.objectContaining({ flexShrink: 1 }));
  });

  test('Bangla says সারি for the line everywhere, and the master’s Close is not STOP', () => {
    const bn = STRINGS.bn;
    // fieldHints are another table (a refused field's rule), kept apart here.
    const { fieldHints: _hints, ...words } = bn;
    const texts: string[] = [];
    const collect = (v: unknown) => {
      if (typeof v === 'string') texts.push(v);
      else if (typeof v === 'function') texts.push(String(v('X', 'Y', 'Z', 'W')));
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    collect(words);
    expect(texts.filter((x) => x.includes('লাইন'))).toEqual([]);
    expect(bn.moveButton).toContain('সারি');
    expect(bn.removeButton).toContain('সারি');
    expect(bn.closePump).not.toBe(bn.stop);
    expect(bn.closePump).not.toContain('বন্ধ');
  });
});
