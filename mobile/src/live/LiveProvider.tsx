import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react';
import { AppState } from 'react-native';

import type { Entry } from '../api/types';
import { LiveStore, PollingFeed, type Feed, type LiveSnapshot, type MotorApi } from './live';

export const POLL_MS = 3000;

interface LiveContextValue {
  store: LiveStore;
  feed: Feed;
  intervalMs: number;
}

const LiveContext = createContext<LiveContextValue | null>(null);

/** Keeps the motor status fresh while the app is in front, and quiet while it is not. */
export function LiveProvider({
  api,
  intervalMs = POLL_MS,
  makeFeed,
  children,
}: {
  api: MotorApi;
  intervalMs?: number;
  /** The feed instead of polling alone (the app's: the event stream, polling as its fallback). */
  makeFeed?: (store: LiveStore, intervalMs: number) => Feed;
  children: ReactNode;
}) {
  const value = useMemo(() => {
    const store = new LiveStore(api);
    const feed = makeFeed ? makeFeed(store, intervalMs) : new PollingFeed(store, intervalMs);
    return { store, feed, intervalMs };
  }, [api, intervalMs, makeFeed]);

  useEffect(() => {
    const { feed } = value;
    if (AppState.currentState !== 'background') feed.start();
    const sub = AppState.addEventListener('change', (state) => (state === 'active' ? feed.start() : feed.stop()));
    return () => {
      sub.remove();
      feed.stop();
    };
  }, [value]);

  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export interface Live extends LiveSnapshot {
  /** How often the status is polled when it must be (ms): also the pace of reads no event brings. */
  intervalMs: number;
  start(minutes?: number): Promise<Entry>;
  stop(): Promise<Entry>;
  refresh(): void;
}

export function useLive(): Live {
  const ctx = useContext(LiveContext);
  if (!ctx) throw new Error('useLive outside LiveProvider');
  const { store, feed, intervalMs } = ctx;
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot);
  return useMemo(
    () => ({
      ...snap,
      intervalMs,
      start: async (minutes?: number) => {
        try {
          return await store.start(minutes);
        } finally {
          feed.poke();
        }
      },
      stop: async () => {
        try {
          return await store.stop();
        } finally {
          feed.poke();
        }
      },
      refresh: () => feed.poke(),
    }),
    [snap, store, feed, intervalMs],
  );
}

/** Seconds left of a running countdown, ticking each second; frozen when not running. */
export function useCountdown(seconds: number | null | undefined, since: number, running: boolean): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!running) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [running, since]);
  if (seconds == null) return null;
  if (!running) return seconds;
  return Math.max(0, seconds - Math.floor(Math.max(0, now - since) / 1000));
}
