// Large type and strong contrast for a cheap phone in the sun. Every state has a word and a colour.
export const colors = {
  background: '#FFFFFF',
  surface: '#F4F4F5',
  text: '#0A0A0A',
  muted: '#3F3F46',
  line: '#A1A1AA',
  header: '#0F172A',
  headerText: '#FFFFFF',
  primary: '#0B6E2A',
  primaryText: '#FFFFFF',
  danger: '#B3261E',
  dangerText: '#FFFFFF',
  running: '#0B6E2A',
  runningText: '#FFFFFF',
  hold: '#F5B301',
  holdText: '#0A0A0A',
  waiting: '#1747C6',
  waitingText: '#FFFFFF',
  idle: '#52525B',
  idleText: '#FFFFFF',
  offline: '#7F1D1D',
  offlineText: '#FFFFFF',
  errorBg: '#FDECEC',
  errorText: '#7F1D1D',
  successBg: '#E3F5E8',
  successText: '#0B4F1E',
  infoBg: '#E8EEFB',
  infoText: '#102A6B',
} as const;

export const size = {
  small: 17,
  body: 20,
  title: 26,
  state: 38,
  button: 24,
  touch: 56,
  bigTouch: 84,
  pad: 16,
  radius: 12,
} as const;

export type Tone = 'running' | 'hold' | 'waiting' | 'idle';

export const tone: Record<Tone, { bg: string; fg: string }> = {
  running: { bg: colors.running, fg: colors.runningText },
  hold: { bg: colors.hold, fg: colors.holdText },
  waiting: { bg: colors.waiting, fg: colors.waitingText },
  idle: { bg: colors.idle, fg: colors.idleText },
};
