import { useI18n } from '../i18n/I18n';
import { useLive } from '../live/LiveProvider';

/**
 * While the server cannot be reached: the time of its last answer ("11:25 PM"), which is what the
 * motor state on screen dates from; null while it answers. A screen then shows its state greyed
 * and "As of 11:25 PM" (StateBlock's and Fact's `asOf`) and stops its countdowns: a run may have
 * ended, paused or been stopped since, and a clock still ticking would say it had not. The
 * dashboard says the same ("What you see is as of 11:25 PM").
 */
export function useAsOf(): string | null {
  const live = useLive();
  const i18n = useI18n();
  return live.connection === 'offline' && live.lastContact != null ? i18n.time(live.lastContact) : null;
}
