import { useEffect, useRef, useState } from 'react';

/** A second tap sooner than this after the first is one double tap, not a decision: it is ignored. */
export const CONFIRM_GUARD_MS = 700;
/** A first tap not followed by a second within this is forgotten. */
export const CONFIRM_TIMEOUT_MS = 5000;

export interface Confirm {
  /** Whether `target` has been tapped once and waits for its second tap. */
  isArmed(target?: string): boolean;
  /**
   * A tap on `target`: true when it confirms (a second tap on the same target, at least
   * CONFIRM_GUARD_MS after the first); otherwise it arms `target` (or, too soon, is ignored) and
   * the caller does nothing yet.
   */
  tap(target?: string): boolean;
  disarm(): void;
}

interface Armed {
  target: string;
  about: string;
  /** The guard time has passed: the next tap on the target confirms. */
  ready: boolean;
  /** Tells one arming from the next (its timers). */
  n: number;
}

/**
 * Two taps for a change that is hard to take back (suspend, a correction, a large approval…): the
 * first arms and the label says what will happen, the second does it. A double tap is not two
 * decisions, so a second tap within CONFIRM_GUARD_MS is ignored; an armed tap disarms after
 * CONFIRM_TIMEOUT_MS, and as soon as `about` (what the label names: the amount, the reason, the
 * farmer) changes, so the second tap always does what the label said. One hook may serve several
 * targets (a farmer's suspend and new password): arming one disarms the others.
 */
export function useConfirm(about = ''): Confirm {
  const [armed, setArmed] = useState<Armed | null>(null);
  // Taps read and write the ref: two taps handled before a render still see each other.
  const current = useRef<Armed | null>(null);
  const counter = useRef(0);

  const set = (next: Armed | null) => {
    current.current = next;
    setArmed(next);
  };

  // What it is about changed: the armed tap no longer says what a second would do.
  useEffect(() => {
    if (current.current && current.current.about !== about) set(null);
  }, [about]);

  const n = armed?.n;
  useEffect(() => {
    if (n === undefined) return;
    const ready = setTimeout(() => {
      if (current.current?.n === n) set({ ...current.current, ready: true });
    }, CONFIRM_GUARD_MS);
    const forget = setTimeout(() => {
      if (current.current?.n === n) set(null);
    }, CONFIRM_TIMEOUT_MS);
    return () => {
      clearTimeout(ready);
      clearTimeout(forget);
    };
  }, [n]);

  const live = (target: string) => {
    const a = current.current;
    return a && a.target === target && a.about === about ? a : null;
  };

  return {
    isArmed: (target = '') => !!armed && armed.target === target && armed.about === about,
    tap: (target = '') => {
      const a = live(target);
      if (!a) {
        set({ target, about, ready: false, n: ++counter.current });
        return false;
      }
      if (!a.ready) return false;
      set(null);
      return true;
    },
    disarm: () => set(null),
  };
}
