// The two-tap confirmation every hard-to-undo button uses (useConfirm), on jest's fake clock.
import { act, renderHook } from '@testing-library/react-native';

import { CONFIRM_GUARD_MS, CONFIRM_TIMEOUT_MS, useConfirm } from '../src/ui/useConfirm';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function hook(about = 'a') {
  return renderHook(({ about: what }: { about: string }) => useConfirm(what), { initialProps: { about } });
}

/** Taps and returns whether the tap confirmed. */
function tap(result: { current: ReturnType<typeof useConfirm> }, target?: string): boolean {
  let confirmed = false;
  act(() => {
    confirmed = result.current.tap(target);
  });
  return confirmed;
}

const wait = (ms: number) => act(() => jest.advanceTimersByTime(ms));

test('the first tap arms; a second one after the guard confirms, and disarms', () => {
  const { result } = hook();
  expect(result.current.isArmed()).toBe(false);
  expect(tap(result)).toBe(false);
  expect(result.current.isArmed()).toBe(true);
  wait(CONFIRM_GUARD_MS);
  expect(tap(result)).toBe(true);
  expect(result.current.isArmed()).toBe(false);
});

test('a double tap is one tap: the second, within the guard, is ignored and stays armed', () => {
  const { result } = hook();
  tap(result);
  wait(100);
  expect(tap(result)).toBe(false);
  expect(tap(result)).toBe(false);
  expect(result.current.isArmed()).toBe(true);
  // Ignored taps do not start the guard again.
  wait(CONFIRM_GUARD_MS - 100);
  expect(tap(result)).toBe(true);
});

test('two taps handled before a render still see each other', () => {
  const { result } = hook();
  let first = true;
  let second = true;
  act(() => {
    first = result.current.tap();
    second = result.current.tap();
  });
  expect([first, second]).toEqual([false, false]);
});

test('an armed tap not followed within 5 s is forgotten', () => {
  const { result } = hook();
  tap(result);
  wait(CONFIRM_TIMEOUT_MS - 1);
  expect(result.current.isArmed()).toBe(true);
  wait(1);
  expect(result.current.isArmed()).toBe(false);
  // The next tap asks again.
  expect(tap(result)).toBe(false);
  expect(result.current.isArmed()).toBe(true);
});

test('what it is about changes: disarmed at once, and it stays so if it changes back', () => {
  const { result, rerender } = hook('+5');
  tap(result);
  wait(CONFIRM_GUARD_MS);
  rerender({ about: '+500' });
  expect(result.current.isArmed()).toBe(false);
  expect(tap(result)).toBe(false);
  expect(result.current.isArmed()).toBe(true);
  rerender({ about: '+5' });
  expect(result.current.isArmed()).toBe(false);
  wait(CONFIRM_GUARD_MS);
  expect(tap(result)).toBe(false);
});

test('one hook, several targets: arming one disarms the other', () => {
  const { result } = hook();
  tap(result, 'suspend');
  wait(CONFIRM_GUARD_MS);
  expect(tap(result, 'password')).toBe(false);
  expect(result.current.isArmed('suspend')).toBe(false);
  expect(result.current.isArmed('password')).toBe(true);
  wait(CONFIRM_GUARD_MS);
  expect(tap(result, 'password')).toBe(true);
});
