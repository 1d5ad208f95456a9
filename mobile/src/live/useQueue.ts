// The line a screen shows: the one the state's event carried, read from the server only when the
// state came without it (a poll, a tap's answer), again with each state.
import { useCallback, useRef } from 'react';

import type { Queue } from '../api/types';
import { useResource, type Resource } from '../ui/useResource';
import { useLive } from './LiveProvider';

/**
 * The line as of the state shown. `read` asks the server (`api.queue`); a reload (a pull, or an
 * owner's change to the line) always asks it.
 */
export function useQueue(read: () => Promise<Queue>): Resource<Queue> {
  const live = useLive();
  const asking = useRef(false);
  const queue = useResource(() => (live.queue && !asking.current ? Promise.resolve(live.queue) : read()), live.version);
  const reload = useCallback(() => {
    // The resource calls its loader at once, before its first wait: the flag is read then.
    asking.current = true;
    try {
      return queue.reload();
    } finally {
      asking.current = false;
    }
  }, [queue.reload]);
  return { ...queue, reload };
}
