import { ApiError, OfflineError } from '../src/api/client';
import type { Entry, Status } from '../src/api/types';
import { LiveStore, PollingFeed } from '../src/live/live';
import { KARIM, entry, idle, runningMine, status } from '../test/fakeServer';
import { fakeMotor } from '../test/fakeMotor';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

describe('LiveStore', () => {
  test('a start shows RUNNING at once, then the server answer replaces the guess', async () => {
    const api = fakeMotor();
    const store = new LiveStore(api);
    await store.pull();
    const answer = deferred<Entry>();
    api.start.mockReturnValue(answer.promise);
    const done = store.start();
    expect(store.getSnapshot().pending).toBe('start');
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    expect(store.getSnapshot().status!.me.entry!.status).toBe('RUNNING');
    // The server put us in HOLD (the grid is down): that is what shows.
    answer.resolve(entry({ status: 'HOLD', holdReason: 'LOAD_SHEDDING', remainingSeconds: 1800 }));
    await done;
    const snap = store.getSnapshot();
    expect(snap.pending).toBeNull();
    expect(snap.status!.motor).toMatchObject({ state: 'HOLD', holdReason: 'LOAD_SHEDDING', activeUserId: KARIM.id });
    expect(snap.status!.me.entry!.status).toBe('HOLD');
  });

  test('a start while the motor is busy is expected to wait', async () => {
    const api = fakeMotor(status({ motor: { state: 'RUNNING', activeUserId: 'u2', remainingSeconds: 600 } }));
    const store = new LiveStore(api);
    await store.pull();
    api.start.mockReturnValue(new Promise(() => {}));
    void store.start();
    expect(store.getSnapshot().status!.me.entry!.status).toBe('WAITING');
    expect(store.getSnapshot().status!.motor.activeUserId).toBe('u2');
  });

  test('a refused start goes back to what the server last said and throws', async () => {
    const api = fakeMotor();
    const store = new LiveStore(api);
    await store.pull();
    api.start.mockRejectedValue(new ApiError(409, 'INSUFFICIENT_BALANCE', 'no minutes'));
    await expect(store.start()).rejects.toMatchObject({ code: 'INSUFFICIENT_BALANCE' });
    expect(store.getSnapshot().status).toEqual(idle());
    expect(store.getSnapshot().pending).toBeNull();
  });

  test('a stop folds in the new balance from the answer', async () => {
    const api = fakeMotor(runningMine(1500, 1500));
    const store = new LiveStore(api);
    await store.pull();
    api.stop.mockResolvedValue(entry({ status: 'COMPLETED', chargedSeconds: 300, availableSeconds: 1500, remainingSeconds: null }));
    await store.stop();
    const s = store.getSnapshot().status!;
    expect(s.motor.state).toBe('IDLE');
    expect(s.me.entry).toBeNull();
    expect(s.me.availableSeconds).toBe(1500);
  });

  test('a poll that began before a tap answered is old news and is dropped', async () => {
    const api = fakeMotor();
    const store = new LiveStore(api);
    await store.pull();
    const slowPoll = deferred<Status>();
    api.status.mockReturnValueOnce(slowPoll.promise);
    const poll = store.pull();
    api.start.mockResolvedValue(entry());
    await store.start();
    slowPoll.resolve(idle()); // says IDLE, but it was asked before the start
    await poll;
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
  });

  test('offline keeps the last status and says offline; the next answer says online', async () => {
    const api = fakeMotor(runningMine());
    const store = new LiveStore(api, () => 5000);
    await store.pull();
    api.status.mockRejectedValueOnce(new OfflineError());
    await store.pull();
    expect(store.getSnapshot()).toMatchObject({ connection: 'offline', lastContact: 5000 });
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    await store.pull();
    expect(store.getSnapshot().connection).toBe('online');
  });
});

describe('PollingFeed', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('polls at once, then every interval, until stopped; a poke polls now', async () => {
    const pull = jest.fn(async () => {});
    const feed = new PollingFeed({ pull }, 3000);
    feed.start();
    await Promise.resolve();
    expect(pull).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(3000);
    expect(pull).toHaveBeenCalledTimes(2);
    feed.poke();
    await Promise.resolve();
    expect(pull).toHaveBeenCalledTimes(3);
    await jest.advanceTimersByTimeAsync(2999);
    expect(pull).toHaveBeenCalledTimes(3);
    feed.stop();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(pull).toHaveBeenCalledTimes(3);
  });

  test('a poke during a poll asks again right after it, never two at once', async () => {
    let inFlight = 0;
    let most = 0;
    const gate = deferred<void>();
    const pull = jest.fn(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      if (pull.mock.calls.length === 1) await gate.promise;
      inFlight--;
    });
    const feed = new PollingFeed({ pull }, 3000);
    feed.start();
    feed.poke();
    feed.poke();
    gate.resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(pull).toHaveBeenCalledTimes(2);
    expect(most).toBe(1);
    feed.stop();
  });
});
