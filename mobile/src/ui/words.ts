// Server codes in the user's words, and the colour that goes with each state.
import type { Entry, MotorState } from '../api/types';
import type { Strings } from '../i18n/strings';
import type { Tone } from './theme';

export function holdWords(reason: string | null | undefined, t: Strings, resumesIn?: string | null): string {
  const words = !reason ? t.holdUnknown('?') : (t.holdReasons[reason] ?? t.holdUnknown(reason));
  // In HOLD for restart protection: when the motor may start again (already in words).
  return resumesIn ? `${words} · ${t.resumesIn(resumesIn)}` : words;
}

export function motorTone(state: MotorState | string): Tone {
  return state === 'RUNNING' ? 'running' : state === 'HOLD' ? 'hold' : 'idle';
}

export function motorWord(state: MotorState | string, t: Strings): string {
  return state === 'RUNNING' ? t.stateRunning : state === 'HOLD' ? t.stateHold : t.stateIdle;
}

export function entryTone(entry: Pick<Entry, 'status'>): Tone {
  return entry.status === 'WAITING' ? 'waiting' : motorTone(entry.status);
}

export function entryWord(entry: Pick<Entry, 'status'>, t: Strings): string {
  return entry.status === 'WAITING' ? t.stateWaiting : motorWord(entry.status, t);
}

/** Why a minute request was rejected, in words (a code this app does not know: the code itself). */
export function rejectWords(reason: string, t: Strings): string {
  return t.rejectReasons[reason] ?? reason;
}

/** A device's update state in words: `version` the release meant for it, `percent` formatted. */
export function updateWords(state: string, version: string, percent: string, t: Strings): string {
  return t.updateStates[state]?.(version, percent) ?? state;
}

/** A firmware update is on its way to the device: offered, or downloading. Neither good nor bad yet. */
export function updateUnderway(state: string | null | undefined): boolean {
  return state === 'OFFERED' || state === 'DOWNLOADING';
}

/** The device's one status (derived by the server) in words, and whether it is good news. */
export function deviceWords(status: string, t: Strings): string {
  return t.deviceStatuses[status] ?? status;
}

export function deviceOk(status: string): boolean {
  return status === 'PUMPING' || status === 'READY';
}

/** The relay has not yet followed the motor's command: neither good nor bad news, a moment. */
export function deviceSwitching(status: string): boolean {
  return status === 'SWITCHING_ON' || status === 'SWITCHING_OFF';
}

export function isLive(entry: Entry | null | undefined): entry is Entry {
  return !!entry && (entry.status === 'RUNNING' || entry.status === 'HOLD' || entry.status === 'WAITING');
}

export function isActive(entry: Entry | null | undefined): entry is Entry {
  return !!entry && (entry.status === 'RUNNING' || entry.status === 'HOLD');
}
