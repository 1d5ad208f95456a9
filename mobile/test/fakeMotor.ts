// A fake of the motor calls `LiveStore` makes (`MotorApi`): the status it answers is set by the
// test, and Start and Stop answer what the test gives them.
import type { Entry, Status } from '../src/api/types';
import type { MotorApi } from '../src/live/live';
import { idle } from './fakeServer';

export function fakeMotor(initial: Status = idle()) {
  let current = initial;
  const api = {
    status: jest.fn(async () => current),
    start: jest.fn<Promise<Entry>, [number?]>(),
    stop: jest.fn<Promise<Entry>, []>(),
    set: (s: Status) => (current = s),
  };
  return api as MotorApi & typeof api;
}
