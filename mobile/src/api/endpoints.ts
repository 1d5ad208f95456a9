// Every call the app makes, by name. The casts narrow the generated types (plain strings in the
// server's document) to the values API.md names; see types.ts.
import type { ApiClient } from './client';
import type {
  AdminSummary,
  AlertProfile,
  Notifications,
  Balance,
  Device,
  Entry,
  MinuteRequest,
  Queue,
  Status,
  Usage,
  User,
  UserWithBalance,
  Wallet,
} from './types';

export function endpoints(client: ApiClient) {
  return {
    // Motor operation (users, and admins for their own tenant).
    status: async () => (await client.call('get', '/api/motor/status')) as Status,
    start: async (minutes?: number) => (await client.call('post', '/api/motor/start', { body: { minutes: minutes ?? null } })) as Entry,
    stop: async () => (await client.call('post', '/api/motor/stop')) as Entry,
    queue: async () => (await client.call('get', '/api/queue')) as Queue,
    wallet: async (): Promise<Wallet> => client.call('get', '/api/wallet'),
    usage: async (): Promise<Usage[]> => client.call('get', '/api/usage'),
    requestMinutes: async (minutes: number, note?: string) =>
      (await client.call('post', '/api/minute-requests', { body: { minutes, note: note || null } })) as MinuteRequest,
    myRequests: async () => (await client.call('get', '/api/minute-requests')) as MinuteRequest[],

    // Admin.
    users: async () => (await client.call('get', '/api/admin/users')) as UserWithBalance[],
    recharge: async (userId: string, minutes: number, note?: string): Promise<Balance> =>
      client.call('post', '/api/admin/recharge', { body: { userId, minutes, note: note || null } }),
    /** ± minutes with a reason (a mistake put right); written in the ledger and the log. */
    correct: async (userId: string, minutes: number, note: string): Promise<Balance> =>
      client.call('post', '/api/admin/corrections', { body: { userId, minutes, note } }),
    suspend: async (id: string) =>
      (await client.call('post', '/api/admin/users/{id}/suspend', { params: { id } })) as User,
    unsuspend: async (id: string) =>
      (await client.call('post', '/api/admin/users/{id}/unsuspend', { params: { id } })) as User,
    minuteRequests: async (status?: 'PENDING') =>
      (await client.call('get', '/api/admin/minute-requests', { query: { status } })) as MinuteRequest[],
    approve: async (id: string) =>
      (await client.call('post', '/api/admin/minute-requests/{id}/approve', { params: { id } })) as MinuteRequest,
    reject: async (id: string) =>
      (await client.call('post', '/api/admin/minute-requests/{id}/reject', { params: { id } })) as MinuteRequest,
    devices: async (): Promise<Device[]> => client.call('get', '/api/admin/devices'),
    adminStop: async () => (await client.call('post', '/api/admin/motor/stop')) as Entry,

    // Alerts: everyone's bell and how they hear.
    notifications: async (): Promise<Notifications> => client.call('get', '/api/notifications', { query: { limit: 100 } }),
    /** Marks the given notifications read, or all of them. */
    markRead: async (ids?: string[]): Promise<Notifications> =>
      client.call('post', '/api/notifications/read', { body: { ids: ids ?? null } }),
    alertProfile: async (): Promise<AlertProfile> => client.call('get', '/api/alerts/profile'),
    setAlertProfile: async (profile: AlertProfile): Promise<AlertProfile> =>
      client.call('put', '/api/alerts/profile', { body: profile }),

    // Master.
    admins: async () => (await client.call('get', '/api/master/admins')) as AdminSummary[],
  };
}

export type Api = ReturnType<typeof endpoints>;
