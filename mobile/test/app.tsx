// Renders the whole app against a FakeServer, signed in or not.
import { render } from '@testing-library/react-native';

import App from '../App';
import type { User } from '../src/api/types';
import { KEYS, memoryStore, type AppStorage } from '../src/storage';
import { ADMIN, BASE, FakeServer, KARIM, MASTER, SALMA, withSessions } from './fakeServer';

export const ACCOUNTS = [
  { user: KARIM, password: 'karim-password' },
  { user: SALMA, password: 'salma-password' },
  { user: ADMIN, password: 'rahim-password' },
  { user: MASTER, password: 'master-password' },
];

export function newServer() {
  const server = new FakeServer().install();
  const sessions = withSessions(server, ACCOUNTS);
  return { server, sessions };
}

export type Sessions = ReturnType<typeof withSessions>;

/** Storage as a phone that signed in before would have it. */
export function signedInStorage(sessions: Sessions, user: User, prefs: Record<string, string> = {}) {
  const secure = memoryStore({ [KEYS.refreshToken]: sessions.storedRefreshToken(user) });
  const stored = memoryStore({ [KEYS.serverUrl]: BASE, [KEYS.user]: JSON.stringify(user), [KEYS.language]: 'en', ...prefs });
  return { secure, prefs: stored } satisfies AppStorage;
}

export function renderApp(storage: AppStorage, pollMs = 60_000) {
  // Long poll interval by default: tests move on taps and pokes, not on the clock.
  return render(<App storage={storage} pollMs={pollMs} language="en" />);
}
