// Every call the app makes, by name. The casts narrow the generated types (plain strings in the
// server's document) to the values API.md names; see types.ts.
import type { ApiClient } from './client';
import type {
  AdminPage,
  AdminSummary,
  AlertProfile,
  Balance,
  Card,
  Device,
  DeviceCreated,
  Entry,
  FarmerPhone,
  FleetTotals,
  MinuteRequest,
  NewPassword,
  Notifications,
  Queue,
  Receipt,
  RejectReason,
  Status,
  Terms,
  Usage,
  User,
  UserWithBalance,
  Wallet,
} from './types';

/** Pump owners on one page of the master's list. */
export const ADMINS_PER_PAGE = 50;

export function endpoints(client: ApiClient) {
  return {
    // Motor operation (users, and admins for their own tenant).
    status: async () => (await client.call('get', '/api/motor/status')) as Status,
    start: async (minutes?: number) => (await client.call('post', '/api/motor/start', { body: { minutes: minutes ?? null } })) as Entry,
    stop: async () => (await client.call('post', '/api/motor/stop')) as Entry,
    queue: async () => (await client.call('get', '/api/queue')) as Queue,
    wallet: async (): Promise<Wallet> => client.call('get', '/api/wallet'),
    /** One of the farmer's own receipts (its id on their ledger's line), to show or print again. */
    ownReceipt: async (id: string): Promise<Receipt> => client.call('get', '/api/receipts/{id}', { params: { id } }),
    usage: async (): Promise<Usage[]> => client.call('get', '/api/usage'),
    requestMinutes: async (minutes: number, note?: string) =>
      (await client.call('post', '/api/minute-requests', { body: { minutes, note: note || null } })) as MinuteRequest,
    myRequests: async () => (await client.call('get', '/api/minute-requests')) as MinuteRequest[],
    /** The caller's pump's terms: the most minutes one request may ask for, and the price. */
    ownTerms: async (): Promise<Terms> => client.call('get', '/api/terms'),

    // Everyone: their own account.
    /**
     * Changes the caller's own password. Every other session of the account ends; this one stays
     * signed in. A wrong current password is 403 `WRONG_PASSWORD` and counts against sign-in limits.
     */
    changePassword: async (currentPassword: string, newPassword: string): Promise<void> => {
      await client.call('post', '/api/auth/password', { body: { currentPassword, newPassword } });
    },

    // Admin.
    users: async () => (await client.call('get', '/api/admin/users')) as UserWithBalance[],
    /**
     * Adds minutes; with `cashTaka` (or at the pump's price when absent) a receipt is written.
     * Sent again with the same `onceKey` (a retry), it is made once.
     */
    recharge: async (userId: string, minutes: number, note?: string, cashTaka?: number, onceKey?: string): Promise<Balance> =>
      client.call('post', '/api/admin/recharge', {
        body: cashTaka === undefined ? { userId, minutes, note: note || null } : { userId, minutes, note: note || null, cashTaka },
        onceKey,
      }),
    receipt: async (id: string): Promise<Receipt> => client.call('get', '/api/admin/receipts/{id}', { params: { id } }),
    /** One farmer's receipts since `from` (RFC 3339), newest first, void ones too. */
    farmerReceipts: async (userId: string, from: string): Promise<Receipt[]> =>
      client.call('get', '/api/admin/receipts', { query: { userId, from } }),
    /**
     * Voids a receipt (a mistaken recharge): its minutes are taken back and it counts for no cash.
     * Once: again, 409 `ALREADY_VOID`; 409 `BELOW_ZERO` when the farmer used the minutes.
     */
    voidReceipt: async (id: string): Promise<Receipt> =>
      client.call('post', '/api/admin/receipts/{id}/void', { params: { id } }),
    /** A new password for a farmer, shown once; the farmer is signed out everywhere. */
    resetPassword: async (id: string): Promise<NewPassword> =>
      client.call('post', '/api/admin/users/{id}/password', { params: { id } }),
    /** ± minutes with a reason (a mistake put right); written in the ledger and the log. Made once per `onceKey`. */
    correct: async (userId: string, minutes: number, note: string, onceKey?: string): Promise<Balance> =>
      client.call('post', '/api/admin/corrections', { body: { userId, minutes, note }, onceKey }),
    /** A farmer's phone for SMS as it stands: confirmed, waiting with its code, or dropped. */
    farmerPhone: async (id: string): Promise<FarmerPhone> =>
      client.call('get', '/api/admin/users/{id}/phone', { params: { id } }),
    /** Enrols a farmer's phone for SMS: it waits, with the code to text from it, until confirmed. */
    enrolPhone: async (id: string, phone: string, language: 'en' | 'bn'): Promise<FarmerPhone> =>
      client.call('put', '/api/admin/users/{id}/phone', { params: { id }, body: { phone, language } }),
    /** A farmer's new name (1 to 80 characters; the server trims it). */
    renameUser: async (id: string, name: string) =>
      (await client.call('patch', '/api/admin/users/{id}', { params: { id }, body: { name } })) as User,
    suspend: async (id: string) =>
      (await client.call('post', '/api/admin/users/{id}/suspend', { params: { id } })) as User,
    unsuspend: async (id: string) =>
      (await client.call('post', '/api/admin/users/{id}/unsuspend', { params: { id } })) as User,
    minuteRequests: async (status?: 'PENDING') =>
      (await client.call('get', '/api/admin/minute-requests', { query: { status } })) as MinuteRequest[],
    approve: async (id: string) =>
      (await client.call('post', '/api/admin/minute-requests/{id}/approve', { params: { id } })) as MinuteRequest,
    /** Rejects a request, with the reason the farmer is shown (none: no reason). */
    reject: async (id: string, reason?: RejectReason | null) =>
      (await client.call('post', '/api/admin/minute-requests/{id}/reject', {
        params: { id },
        body: reason ? { reason } : undefined,
      })) as MinuteRequest,
    devices: async (): Promise<Device[]> => client.call('get', '/api/admin/devices'),
    createUser: async (name: string, username: string, password: string) =>
      (await client.call('post', '/api/admin/users', { body: { name, username, password } })) as User,
    cards: async (): Promise<Card[]> => client.call('get', '/api/admin/cards'),
    bindCard: async (id: string, uid: string): Promise<Card> =>
      client.call('post', '/api/admin/users/{id}/rfid', { params: { id }, body: { uid } }),
    removeCard: async (uid: string): Promise<void> => {
      await client.call('delete', '/api/admin/cards/{uid}', { params: { uid } });
    },
    /** Registers a device. Made once per `onceKey`: sent again, it answers `repeated` and no key. */
    registerDevice: async (name: string, onceKey?: string): Promise<DeviceCreated> =>
      client.call('post', '/api/admin/devices', { body: { name }, onceKey }),
    /** The tenant's finished runs and receipts since `from` (RFC 3339). */
    tenantUsage: async (from: string): Promise<Usage[]> =>
      (await client.call('get', '/api/admin/usage', { query: { from } })) as Usage[],
    receipts: async (from: string): Promise<Receipt[]> => client.call('get', '/api/admin/receipts', { query: { from } }),
    terms: async (): Promise<Terms> => client.call('get', '/api/admin/terms'),
    /** Sets the pump's terms; `pricePerHourTaka` null = no price. */
    setTerms: async (maxRequestMinutes: number, pricePerHourTaka: number | null): Promise<Terms> =>
      client.call('put', '/api/admin/terms', { body: { maxRequestMinutes, pricePerHourTaka } }),
    /** Moves a waiting farmer to `position` (1 = next, past the end = last), with a reason; → the queue in its new order. */
    moveWaiting: async (userId: string, position: number, reason: string) =>
      (await client.call('post', '/api/admin/queue/{userId}/move', { params: { userId }, body: { position, reason } })) as Queue,
    /** Takes a waiting farmer out of the line, with a reason (their minutes stay); → the ended entry. */
    removeWaiting: async (userId: string, reason: string) =>
      (await client.call('post', '/api/admin/queue/{userId}/remove', { params: { userId }, body: { reason } })) as Entry,
    /**
     * Stops the run `entryId` (the one the screen shows): sent twice, the second finds it ended
     * (409 `ALREADY_ENDED`) and stops nothing, not the run of the next in line.
     */
    adminStop: async (entryId: string) =>
      (await client.call('post', '/api/admin/motor/stop', { body: { entryId } })) as Entry,

    // Alerts: everyone's bell and how they hear.
    /** In the screen's language (`lang`); SMS and push keep the language of messages. */
    notifications: async (lang: 'en' | 'bn'): Promise<Notifications> =>
      client.call('get', '/api/notifications', { query: { limit: 100, language: lang } }),
    /** Marks the given notifications read, or all of them. */
    markRead: async (ids?: string[]): Promise<Notifications> =>
      client.call('post', '/api/notifications/read', { body: { ids: ids ?? null } }),
    alertProfile: async (): Promise<AlertProfile> => client.call('get', '/api/alerts/profile'),
    setAlertProfile: async (profile: AlertProfile): Promise<AlertProfile> =>
      client.call('put', '/api/alerts/profile', { body: profile }),
    /**
     * Registers this phone's push token as its own, with this session (after every sign-in, and when
     * Expo gives a new token): it moves from another session or account; answers the profile.
     */
    registerPushToken: async (token: string): Promise<AlertProfile> =>
      client.call('put', '/api/alerts/push-tokens/{token}', { params: { token } }),
    /** Takes this phone's push token out of the caller's profile (signing out); answers the profile. */
    forgetPushToken: async (token: string): Promise<AlertProfile> =>
      client.call('delete', '/api/alerts/push-tokens/{token}', { params: { token } }),

    // Master.
    /** One page of the pump owners by username: the first, or the one after the cursor `after` (a page's `next`). */
    admins: async (after?: string | null): Promise<AdminPage> =>
      (await client.call('get', '/api/master/admins', {
        query: after ? { limit: ADMINS_PER_PAGE, after } : { limit: ADMINS_PER_PAGE },
      })) as AdminPage,
    /** Every pump's figures together: owners, farmers, runs now, and the last 30 days' time and cash. */
    totals: async (): Promise<FleetTotals> => client.call('get', '/api/master/totals'),
    /** One pump, read by the master: its queue, its farmers, its last runs and receipts. */
    pumpOf: async (adminId: string, from: string) => {
      const [queue, users, usage, receipts] = await Promise.all([
        client.call('get', '/api/queue', { query: { adminId } }) as Promise<Queue>,
        client.call('get', '/api/admin/users', { query: { adminId } }) as Promise<UserWithBalance[]>,
        client.call('get', '/api/admin/usage', { query: { adminId, from } }) as Promise<Usage[]>,
        client.call('get', '/api/admin/receipts', { query: { adminId, from } }) as Promise<Receipt[]>,
      ]);
      return { queue, users, usage, receipts };
    },
  };
}

export type Api = ReturnType<typeof endpoints>;
