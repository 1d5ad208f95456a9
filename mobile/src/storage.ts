// Where the app keeps what it must remember: the refresh token (secret) and preferences.
//
// Phones: expo-secure-store (Keychain / Keystore) for both. Web has no secure store: the refresh
// token lives in sessionStorage (one browser tab, gone when the tab closes, so two tabs never
// rotate one token against each other), preferences in localStorage.
import { Platform } from 'react-native';
import * as SecureStore from 'expo-secure-store';

export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface AppStorage {
  /** For secrets: the refresh token. */
  secure: KeyValueStore;
  /** For preferences: server address, language, the signed-in account's public details. */
  prefs: KeyValueStore;
}

export const KEYS = {
  refreshToken: 'pumppilot.refreshToken',
  /** A refresh token whose sign-out could not reach the server; revoked at the next chance. */
  revokeLater: 'pumppilot.revokeLater',
  /** This phone's Expo push token, registered on the account signed in: taken out of it at sign-out. */
  pushToken: 'pumppilot.pushToken',
  serverUrl: 'pumppilot.serverUrl',
  lastUsername: 'pumppilot.lastUsername',
  user: 'pumppilot.user',
  language: 'pumppilot.language',
} as const;

function secureStore(): KeyValueStore {
  return {
    get: (key) => SecureStore.getItemAsync(key),
    set: (key, value) => SecureStore.setItemAsync(key, value),
    remove: (key) => SecureStore.deleteItemAsync(key),
  };
}

function webStore(kind: 'localStorage' | 'sessionStorage'): KeyValueStore {
  const store = (): Storage | null => {
    try {
      return typeof window !== 'undefined' ? window[kind] : null;
    } catch {
      return null; // storage disabled by the browser
    }
  };
  return {
    get: async (key) => store()?.getItem(key) ?? null,
    set: async (key, value) => store()?.setItem(key, value),
    remove: async (key) => store()?.removeItem(key),
  };
}

/** A store that lives as long as the process: tests, and a fallback when nothing else works. */
export function memoryStore(initial: Record<string, string> = {}): KeyValueStore & { data: Map<string, string> } {
  const data = new Map(Object.entries(initial));
  return {
    data,
    get: async (key) => data.get(key) ?? null,
    set: async (key, value) => void data.set(key, value),
    remove: async (key) => void data.delete(key),
  };
}

export function deviceStorage(): AppStorage {
  if (Platform.OS === 'web') return { secure: webStore('sessionStorage'), prefs: webStore('localStorage') };
  const store = secureStore();
  return { secure: store, prefs: store };
}
