// The key a change to a wallet is sent with (`Idempotency-Key`), so that an owner who taps again
// after an answer lost on a bad network does not recharge twice: the server makes the change
// once per key and answers the second tap as it answered the first.
import { useRef } from 'react';

import { ApiError } from './client';

/** A new key: the time and 64 random bits (unique enough within one pump's ledger; not a secret). */
export function newOnceKey(): string {
  const random = () => Math.floor(Math.random() * 2 ** 32).toString(36);
  return `${Date.now().toString(36)}-${random()}-${random()}`;
}

/**
 * One form's key, kept from the first try of a change until the change is made: a try that
 * failed (offline, a timeout, a refusal to put right) sends the same key again, so a change the
 * server made although its answer was lost is not made twice. A new key after a change made, or
 * after the server said the key had made another change (`KEY_REUSED`).
 */
export function useOnceKey(): { key: () => string; settle: (error?: unknown) => void } {
  const current = useRef<string | null>(null);
  return {
    key: () => (current.current ??= newOnceKey()),
    settle: (error?: unknown) => {
      if (error === undefined || (error instanceof ApiError && error.code === 'KEY_REUSED')) current.current = null;
    },
  };
}
