// The line a screen shows: the one the state's event carried, read from the server only when the
// state came without it (a poll, a tap's answer), again with each state.
import type { Queue } from '../api/types';
import { useResource, type Resource } from '../ui/useResource';
import { useLive } from './LiveProvider';

/**
 * The line as of the state shown. `read` asks the server (`api.queue`); a reload (a pull, or an
 * owner's change to the line) always asks it.
 */
export function useQueue(read: () => Promise<Queue>): Resource<Queue> {
  const live = useLive();
  return useResource((asked) => (live.queue && !asked ? Promise.resolve(live.queue) : read()), live.version);
}
