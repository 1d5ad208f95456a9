// The signed-in session: sign in, stay signed in across restarts, sign out.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Platform } from 'react-native';

import { ApiClient, ApiError, OfflineError, normaliseServerUrl, revokeRefreshToken, type Tokens } from '../api/client';
import { endpoints, type Api } from '../api/endpoints';
import { onNewPushToken, registerAgain } from '../alerts/push';
import type { User } from '../api/types';
import { diagnoseServer, ServerProblemError } from '../server';
import { KEYS, type AppStorage } from '../storage';

/** Why the sign-in screen is showing, when it is not the first time. */
export type Notice = { kind: 'sessionEnded'; code: string } | { kind: 'signedOutOffline' };

export type AuthState =
  | { phase: 'loading' }
  | { phase: 'signedOut'; notice?: Notice }
  | { phase: 'signedIn'; user: User; client: ApiClient; api: Api };

export interface Auth {
  state: AuthState;
  /** The last server address and username used here, to fill the sign-in form. */
  remembered: { serverUrl: string; username: string };
  signIn(serverUrl: string, username: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  /**
   * Remembers this phone's push token, registered on the account signed in: signing out takes it
   * out of that account, so a phone passed on does not get the first account's pushes.
   */
  pushRegistered(token: string): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

interface PendingRevoke {
  url: string;
  token: string;
  /** This phone's push token, to take out of the account before its session ends. */
  pushToken?: string;
}

/**
 * Takes this phone's push token out of the account of `client`'s session. Only `OfflineError`
 * is thrown (try again later); any other answer means there is nothing left to take (the session
 * is over, or the token went already).
 */
async function forgetPushToken(client: ApiClient, token: string): Promise<void> {
  try {
    await endpoints(client).forgetPushToken(token);
  } catch (err) {
    if (err instanceof OfflineError) throw err;
  }
}

export function AuthProvider({ storage, children }: { storage: AppStorage; children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ phase: 'loading' });
  const [remembered, setRemembered] = useState({ serverUrl: '', username: '' });
  const clientRef = useRef<ApiClient | null>(null);

  const forget = useCallback(async () => {
    await Promise.all([
      storage.secure.remove(KEYS.refreshToken).catch(() => {}),
      storage.prefs.remove(KEYS.user).catch(() => {}),
    ]);
  }, [storage]);

  const makeClient = useCallback(
    (baseUrl: string, tokens: Tokens | null) => {
      const client: ApiClient = new ApiClient({
        baseUrl,
        tokens,
        hooks: {
          onTokens: async (next, user) => {
            await storage.secure.set(KEYS.refreshToken, next.refreshToken);
            await storage.prefs.set(KEYS.user, JSON.stringify(user));
            setState((s) =>
              s.phase === 'signedIn' && s.client === client && JSON.stringify(s.user) !== JSON.stringify(user)
                ? { ...s, user }
                : s,
            );
          },
          onSessionEnded: (error: ApiError) => {
            if (clientRef.current !== client) return;
            clientRef.current = null;
            void forget();
            setState({ phase: 'signedOut', notice: { kind: 'sessionEnded', code: error.code } });
          },
        },
      });
      return client;
    },
    [storage, forget],
  );

  // This phone's push token, registered with the session signed in when push is on: after every
  // sign-in, at every start and when Expo gives a new token. Quiet: offline, or with the session
  // ending, it waits for the next start or sign-in. Kept on the phone once registered, for the
  // sign-out to take it out of the account.
  const registerPush = useCallback(
    async (client: ApiClient) => {
      try {
        const token = await registerAgain(endpoints(client));
        if (token && clientRef.current === client) await storage.prefs.set(KEYS.pushToken, token).catch(() => {});
      } catch {
        // Tried again at the next chance.
      }
    },
    [storage],
  );

  const signedIn = useCallback((client: ApiClient, user: User) => {
    clientRef.current = client;
    setState({ phase: 'signedIn', user, client, api: endpoints(client) });
  }, []);

  // A sign-out that could not reach the server is finished at the next chance.
  const revokePending = useCallback(async () => {
    const raw = await storage.secure.get(KEYS.revokeLater).catch(() => null);
    if (!raw) return;
    try {
      const pending = JSON.parse(raw) as PendingRevoke;
      if (pending.pushToken) {
        // Taking the push token out needs the session: renewed from its refresh token, then ended.
        const client = new ApiClient({
          baseUrl: pending.url,
          tokens: { accessToken: null, accessExpiresAt: 0, refreshToken: pending.token },
        });
        await forgetPushToken(client, pending.pushToken);
        await client.logout();
      } else {
        await revokeRefreshToken(pending.url, pending.token);
      }
    } catch (err) {
      if (err instanceof OfflineError) return; // keep it for next time
    }
    await storage.secure.remove(KEYS.revokeLater).catch(() => {});
  }, [storage]);

  useEffect(() => {
    let live = true;
    (async () => {
      const [serverUrl, username, refreshToken, userJson] = await Promise.all([
        storage.prefs.get(KEYS.serverUrl),
        storage.prefs.get(KEYS.lastUsername),
        storage.secure.get(KEYS.refreshToken),
        storage.prefs.get(KEYS.user),
      ]).catch(() => [null, null, null, null] as const);
      if (!live) return;
      setRemembered({ serverUrl: serverUrl ?? '', username: username ?? '' });
      let user: User | null = null;
      try {
        user = userJson ? (JSON.parse(userJson) as User) : null;
      } catch {
        user = null;
      }
      let client: ApiClient | null = null;
      if (serverUrl && refreshToken && user) {
        // Signed in before: show the app at once (it works offline with the last state); the
        // first request renews the access token, or ends the session if the server says so.
        client = makeClient(serverUrl, { accessToken: null, accessExpiresAt: 0, refreshToken });
        signedIn(client, user);
      } else {
        setState({ phase: 'signedOut' });
      }
      // A sign-out left over first: it may take this phone's token out of the account.
      await revokePending();
      if (client) await registerPush(client);
    })();
    return () => {
      live = false;
    };
  }, [storage, makeClient, signedIn, revokePending, registerPush]);

  const signIn = useCallback(
    async (serverInput: string, username: string, password: string) => {
      const serverUrl = normaliseServerUrl(serverInput);
      const client = makeClient(serverUrl, null);
      let user: User;
      try {
        user = await client.login(username.trim(), password, `PumpPilot app (${Platform.OS})`);
      } catch (err) {
        // No answer, or an answer that is not PumpPilot's: find out why, to say what to fix.
        const unclear = err instanceof OfflineError || (err instanceof ApiError && err.code.startsWith('HTTP_'));
        const problem = unclear ? await diagnoseServer(serverUrl) : null;
        throw problem ? new ServerProblemError(problem) : err;
      }
      await Promise.all([
        storage.prefs.set(KEYS.serverUrl, serverUrl),
        storage.prefs.set(KEYS.lastUsername, username.trim()),
      ]);
      setRemembered({ serverUrl, username: username.trim() });
      signedIn(client, user);
      // The token after the sign-out left over, which may take it out of this very account.
      void revokePending().then(() => registerPush(client));
    },
    [makeClient, signedIn, storage, revokePending, registerPush],
  );

  // Expo gives the phone a new token (its push service renewed it): registered at once.
  const current = state.phase === 'signedIn' ? state.client : null;
  useEffect(() => {
    if (!current) return;
    return onNewPushToken(() => void registerPush(current));
  }, [current, registerPush]);

  const signOut = useCallback(async () => {
    const client = clientRef.current;
    clientRef.current = null;
    let notice: Notice | undefined;
    const pushToken = (await storage.prefs.get(KEYS.pushToken).catch(() => null)) ?? undefined;
    if (client) {
      // This phone stops getting the account's pushes first, while the session still works.
      let pushLeft: string | undefined;
      if (pushToken) {
        try {
          await forgetPushToken(client, pushToken);
        } catch {
          pushLeft = pushToken;
        }
      }
      // Read after: a renewal on the way rotates it.
      const token = client.refreshToken;
      try {
        await client.logout();
      } catch (err) {
        if (err instanceof OfflineError && token) {
          const pending: PendingRevoke = { url: client.baseUrl, token, pushToken: pushLeft };
          await storage.secure.set(KEYS.revokeLater, JSON.stringify(pending)).catch(() => {});
          notice = { kind: 'signedOutOffline' };
        }
        // Any other answer (the session was already gone): nothing left to revoke.
      }
    }
    await storage.prefs.remove(KEYS.pushToken).catch(() => {});
    await forget();
    setState({ phase: 'signedOut', notice });
  }, [forget, storage]);

  const pushRegistered = useCallback(
    async (token: string) => {
      await storage.prefs.set(KEYS.pushToken, token).catch(() => {});
    },
    [storage],
  );

  const value = useMemo(
    () => ({ state, remembered, signIn, signOut, pushRegistered }),
    [state, remembered, signIn, signOut, pushRegistered],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error('useAuth outside AuthProvider');
  return ctx;
}

/** The signed-in session; only for screens shown when signed in. */
export function useSession(): { user: User; api: Api; client: ApiClient } {
  const { state } = useAuth();
  if (state.phase !== 'signedIn') throw new Error('useSession while signed out');
  return state;
}
