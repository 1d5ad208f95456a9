import { useCallback, useEffect, useRef, useState } from 'react';

export interface Resource<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload(): Promise<void>;
}

/**
 * Loads `load()` now and whenever `key` changes (the live version, for lists that move with the
 * motor). A failed reload keeps the data it had, so an offline screen still shows the last list.
 * `load` is told `asked` when the screen asked for it (`reload`: a pull, an action's answer),
 * rather than a key change, for a loader that may answer a key change from what it holds.
 */
export function useResource<T>(load: (asked: boolean) => Promise<T>, key: unknown = 0): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const mounted = useRef(true);
  const latest = useRef(0);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const run = useCallback(async (asked: boolean) => {
    const ticket = ++latest.current;
    try {
      const next = await loadRef.current(asked);
      if (!mounted.current || ticket !== latest.current) return;
      setData(next);
      setError(null);
    } catch (err) {
      if (!mounted.current || ticket !== latest.current) return;
      setError(err);
    } finally {
      if (mounted.current && ticket === latest.current) setLoading(false);
    }
  }, []);
  const reload = useCallback(() => run(true), [run]);

  useEffect(() => {
    void run(false);
  }, [key, run]);

  return { data, error, loading, reload };
}
