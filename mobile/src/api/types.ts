// The app's view of the API: the generated schema types with their string fields narrowed to the
// values API.md names. `Narrow` only accepts a narrowing the generated type allows, so a change in
// the server's document that breaks one of these fails `npm run typecheck`.
import type { components, paths } from './schema';

type Schemas = components['schemas'];

/** `T` with field `K` replaced by `V`, where `V` must fit the generated type of that field. */
type Narrow<T, K extends keyof T, V extends T[K]> = Omit<T, K> & { [P in K]: V };

export type Role = 'master' | 'admin' | 'user';
export type MotorState = 'IDLE' | 'RUNNING' | 'HOLD';
export type EntryStatus = 'WAITING' | 'RUNNING' | 'HOLD' | 'COMPLETED' | 'CANCELLED';
export type RequestStatus = 'PENDING' | 'APPROVED' | 'REJECTED';
/** Why the owner rejected a minute request, as the server documents them (each has words in
 * `strings.ts`); a newer server may add more, so screens fall back to the code itself. */
export type RejectReason = Schemas['RejectReason'];
/** Why a run is paused, as the server documents them (each has words in `strings.ts`); a newer
 * server may add more, so screens fall back to the code itself. */
export type HoldReason = Schemas['HoldReason'];
export type LedgerKind = 'RECHARGE' | 'REQUEST_APPROVED' | 'RUN_CHARGE' | 'CORRECTION';

export type User = Narrow<Schemas['UserView'], 'role', Role>;
export type UserWithBalance = User & Pick<Schemas['UserBalanceView'], 'availableSeconds' | 'availableMinutes'>;
export type AdminSummary = User & Pick<Schemas['AdminSummaryView'], 'userCount' | 'deviceOnline'> & { motorState: MotorState };
/** One page of the pump owners, by username: `next` is the `after` of the page that follows (null: none). */
export type AdminPage = Omit<Schemas['AdminPageView'], 'admins'> & { admins: AdminSummary[] };
/** Every pump's figures together, for the master (`GET /api/master/totals`). */
export type FleetTotals = Schemas['FleetTotalsView'];
export type Entry = Narrow<Schemas['EntryView'], 'status', EntryStatus>;
export type Motor = Narrow<Schemas['MotorView'], 'state', MotorState>;
export type Me = Narrow<Schemas['MeView'], 'entry', Entry | null | undefined>;
export type DeviceState = Schemas['DeviceStateView'];
export type Status = Omit<Schemas['StatusView'], 'motor' | 'me'> & { motor: Motor; me: Me };
export type Queue = Omit<Schemas['QueueView'], 'active' | 'waiting'> & { active?: Entry | null; waiting: Entry[] };
export type LedgerLine = Schemas['LedgerView'];
export type Wallet = Schemas['WalletView'];
export type Usage = Schemas['UsageView'];
/** The pump's terms: the most minutes one request may ask for, and the price of an hour (null: none). */
export type Terms = Schemas['TermsView'];
/** `rejectReason`: why it was rejected (absent or null: no reason given, or not rejected). */
export type MinuteRequest = Narrow<Schemas['MinuteRequestView'], 'status', RequestStatus>;
export type Device = Schemas['DeviceView'];
export type Balance = Schemas['BalanceView'];
export type Card = Schemas['CardView'];
export type DeviceCreated = Schemas['DeviceCreatedView'];
export type Receipt = Schemas['ReceiptView'];
export type NewPassword = Schemas['NewPasswordView'];
export type TokenPair = Omit<Schemas['TokenPair'], 'user'> & { user: User };
export type ErrorBody = Schemas['ErrorBody'];
export type Notification = Schemas['NotificationView'];
export type Notifications = Schemas['NotificationsView'];
export type AlertProfile = Schemas['AlertProfileView'];
export type FarmerPhone = Schemas['FarmerPhoneView'];

// Typed access to the paths of the document: a path or method the server does not serve is a
// compile error, and bodies and answers come from the same document.
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
export type PathWith<M extends Method> = {
  [P in keyof paths]: [paths[P][M]] extends [undefined] ? never : P;
}[keyof paths];
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : void;
export type Answer<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { responses: infer R }
    ? 200 extends keyof R
      ? JsonOf<R[200]>
      : 201 extends keyof R
        ? JsonOf<R[201]>
        : void
    : never;
export type BodyOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody: { content: { 'application/json': infer B } } }
    ? B
    : Operation<P, M> extends { requestBody?: { content: { 'application/json': infer B } } }
      ? B | undefined
      : undefined;
export type QueryOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? Q : undefined;
export type PathParamsOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { path: infer A } } ? A : undefined;
