import { OfflineError } from '../src/api/client';
import type { Entry, Status } from '../src/api/types';
import { EventStreamFeed, RETRY_MOST_MS, RETRY_MS, SILENT_MS, openEvents, type FetchStreaming, type StreamHandlers } from '../src/live/events';
import { LiveStore, PollingFeed } from '../src/live/live';
import { fakeMotor } from '../test/fakeMotor';
import { idle, runningMine } from '../test/fakeServer';

/** A stand-in for the server's stream: the test says what it sends and when it ends. */
class Streams {
  opened: StreamHandlers[] = [];
  closed = 0;
  readonly open = (handlers: StreamHandlers) => {
    this.opened.push(handlers);
    return () => {
      this.closed++;
    };
  };
  get last(): StreamHandlers {
    return this.opened[this.opened.length - 1]!;
  }
  send(state: Status) {
    this.last.alive();
    this.last.state(JSON.stringify({ ...state, queue: { active: null, waiting: [] }, unread: 0 }));
  }
}

function setUp() {
  const api = fakeMotor();
  const store = new LiveStore(api);
  const streams = new Streams();
  const feed = new EventStreamFeed(store, streams.open, new PollingFeed(store, 3000));
  return { api, store, streams, feed };
}

describe('EventStreamFeed', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('polls until the stream brings its first state, then shows each state it sends, and no poll', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(streams.opened).toHaveLength(1);
    expect(api.status).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(3000);
    expect(api.status).toHaveBeenCalledTimes(2);

    streams.send(runningMine(1500));
    expect(store.getSnapshot().status!.motor).toMatchObject({ state: 'RUNNING', remainingSeconds: 1500 });
    expect(store.getSnapshot().connection).toBe('online');
    // The line came with it: the screens need not read it.
    expect(store.getSnapshot().queue).toEqual({ active: null, waiting: [] });
    // The server sends every change, and a state at least every 15 s: no poll while it does.
    for (let i = 0; i < 8; i++) {
      await jest.advanceTimersByTimeAsync(15_000);
      streams.send(runningMine(1500 - 15 * (i + 1)));
    }
    expect(api.status).toHaveBeenCalledTimes(2);
    expect(store.getSnapshot().status!.motor.remainingSeconds).toBe(1380);
    expect(streams.opened).toHaveLength(1);
    feed.stop();
  });

  test('a stream silent for 20 s is closed: polling takes over at once and the stream is tried again', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    streams.send(idle());
    await jest.advanceTimersByTimeAsync(0);
    const polls = api.status.mock.calls.length;
    // Keep-alives count as life.
    await jest.advanceTimersByTimeAsync(SILENT_MS - 1);
    streams.last.alive();
    await jest.advanceTimersByTimeAsync(SILENT_MS - 1);
    expect(streams.closed).toBe(0);
    expect(api.status).toHaveBeenCalledTimes(polls);

    api.set(runningMine(900));
    await jest.advanceTimersByTimeAsync(1);
    expect(streams.closed).toBe(1);
    expect(api.status).toHaveBeenCalledTimes(polls + 1);
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    // A polled status brings no line: the screens read it.
    expect(store.getSnapshot().queue).toBeNull();
    await jest.advanceTimersByTimeAsync(3000);
    expect(api.status).toHaveBeenCalledTimes(polls + 2);
    expect(streams.opened).toHaveLength(2);
    // The new stream works: polling rests again.
    streams.send(runningMine(890));
    await jest.advanceTimersByTimeAsync(12_000);
    expect(api.status).toHaveBeenCalledTimes(polls + 2);
    feed.stop();
  });

  test('a stream that falls silent says offline at once: the poll after it may wait out its whole timeout', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    streams.send(runningMine(900));
    await jest.advanceTimersByTimeAsync(0);
    // The phone's link drops without a word: nothing comes, and a request waits out the client's
    // 15 s timeout.
    api.status.mockImplementation(
      () => new Promise<Status>((_, reject) => setTimeout(() => reject(new OfflineError()), 15_000)),
    );
    await jest.advanceTimersByTimeAsync(SILENT_MS - 1);
    expect(store.getSnapshot().connection).toBe('online');
    await jest.advanceTimersByTimeAsync(1);
    expect(store.getSnapshot().connection).toBe('offline');
    // The picture stays, dated: the farmer sees what was last known and that it is old.
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    // Back: the poll after the one that timed out answers, and says online.
    api.status.mockImplementation(async () => runningMine(880));
    await jest.advanceTimersByTimeAsync(15_000 + 3000);
    expect(store.getSnapshot().connection).toBe('online');
    feed.stop();
  });

  test('a stream that never speaks (a proxy holding its events back) leaves the answering polls online', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    const seen = new Set<string>();
    store.subscribe(() => seen.add(store.getSnapshot().connection));
    for (let t = 0; t < 3 * 60_000; t += 1000) await jest.advanceTimersByTimeAsync(1000);
    expect(streams.opened.length).toBeGreaterThan(3);
    expect(api.status.mock.calls.length).toBeGreaterThan(50);
    expect([...seen]).toEqual(['online']);
    feed.stop();
  });

  test('a refused stream is tried again after a pause that doubles up to a minute, polling meanwhile', async () => {
    const { api, streams, feed } = setUp();
    feed.start();
    await jest.advanceTimersByTimeAsync(0);
    const tries: number[] = [];
    let waited = 0;
    for (let i = 0; i < 7; i++) {
      streams.last.ended();
      const before = streams.opened.length;
      let pause = 0;
      while (streams.opened.length === before) {
        await jest.advanceTimersByTimeAsync(1000);
        pause += 1000;
      }
      tries.push(pause);
      waited += pause;
    }
    expect(tries).toEqual([RETRY_MS, 6000, 12_000, 24_000, 48_000, RETRY_MOST_MS, RETRY_MOST_MS]);
    // Polling went on all along, every 3 s.
    expect(api.status.mock.calls.length).toBeGreaterThanOrEqual(Math.floor(waited / 3000));
    // A stream that works sets the pause back.
    streams.send(idle());
    streams.last.ended();
    await jest.advanceTimersByTimeAsync(RETRY_MS);
    expect(streams.opened).toHaveLength(9);
    feed.stop();
  });

  test('a stream refused before its opening returned is tried again once, after the pause', async () => {
    const { api, store } = setUp();
    const at: number[] = [];
    const began = Date.now();
    const feed = new EventStreamFeed(
      store,
      (handlers) => {
        at.push(Date.now() - began);
        handlers.ended();
        return () => {};
      },
      new PollingFeed(store, 3000),
    );
    feed.start();
    await jest.advanceTimersByTimeAsync(RETRY_MS);
    // No silence watch is left behind for the streams that never were (one would fire once a
    // pause is longer than 20 s, and try again beside the pause): one try a pause, no more.
    await jest.advanceTimersByTimeAsync(100_000 - RETRY_MS);
    expect(at).toEqual([0, 3000, 9000, 21_000, 45_000, 93_000]);
    expect(api.status.mock.calls.length).toBe(34);
    feed.stop();
  });

  test('stop closes the stream and leaves nothing running', async () => {
    const { api, streams, feed } = setUp();
    feed.start();
    streams.send(idle());
    feed.stop();
    expect(streams.closed).toBe(1);
    const polls = api.status.mock.calls.length;
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    expect(streams.opened).toHaveLength(1);
    expect(api.status).toHaveBeenCalledTimes(polls);
    // Back in front: a stream again, and a poll until it speaks.
    feed.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(streams.opened).toHaveLength(2);
    expect(api.status).toHaveBeenCalledTimes(polls + 1);
    feed.stop();
  });

  test('a state that comes while a tap waits for its answer is not shown over the tap', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    streams.send(idle());
    let answer!: (e: Entry) => void;
    api.start.mockReturnValue(new Promise((resolve) => (answer = resolve)));
    const done = store.start();
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    streams.send(idle());
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    answer(runningMine(1800).me.entry as Entry);
    await done;
    streams.send(runningMine(1795));
    expect(store.getSnapshot().status!.motor.remainingSeconds).toBe(1795);
    feed.stop();
  });

  test('after a tap the stream is not waited for: one status is read at once', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    streams.send(idle());
    await jest.advanceTimersByTimeAsync(0);
    const polls = api.status.mock.calls.length;
    // The state of the tap's change came while the tap waited, and was not shown then.
    api.set(runningMine(1790));
    feed.poke();
    await jest.advanceTimersByTimeAsync(0);
    expect(api.status).toHaveBeenCalledTimes(polls + 1);
    expect(store.getSnapshot().status!.motor.remainingSeconds).toBe(1790);
    feed.stop();
  });

  test('a poll asked before a state came is old news when it answers', async () => {
    const { api, store, streams, feed } = setUp();
    feed.start();
    streams.send(idle());
    let answer!: (s: Status) => void;
    api.status.mockReturnValueOnce(new Promise((resolve) => (answer = resolve)));
    feed.poke();
    streams.send(runningMine(1200));
    answer(idle());
    await jest.advanceTimersByTimeAsync(0);
    expect(store.getSnapshot().status!.motor.state).toBe('RUNNING');
    feed.stop();
  });

  test('a state the app cannot read is passed over', async () => {
    const { store, streams, feed } = setUp();
    feed.start();
    streams.send(runningMine(600));
    streams.last.state('{"motor": ');
    streams.last.state('{"error": "nope"}');
    expect(store.getSnapshot().status!.motor.remainingSeconds).toBe(600);
    feed.stop();
  });
});

describe('openEvents', () => {
  const client = { baseUrl: 'http://pump.test:8080', accessToken: jest.fn(async () => 'tok-1') };

  /** A streaming answer whose body the test writes piece by piece. */
  function answer(ok = true) {
    let push!: (chunk: string) => void;
    let end!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (chunk) => controller.enqueue(new TextEncoder().encode(chunk));
        end = () => controller.close();
      },
    });
    return { response: { ok, body }, push: (c: string) => push(c), end: () => end() };
  }

  function recorder() {
    const seen: string[] = [];
    const handlers: StreamHandlers = {
      alive: () => seen.push('alive'),
      state: (data) => seen.push(`state ${data}`),
      ended: () => seen.push('ended'),
    };
    return { seen, handlers };
  }

  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  test('asks the server for its stream with the bearer token and hands on each state, whole', async () => {
    const stream = answer();
    const fetchStreaming = jest.fn<ReturnType<FetchStreaming>, Parameters<FetchStreaming>>(async () => stream.response);
    const { seen, handlers } = recorder();
    openEvents(client, fetchStreaming)(handlers);
    await settle();
    expect(fetchStreaming).toHaveBeenCalledTimes(1);
    const [url, init] = fetchStreaming.mock.calls[0]!;
    expect(url).toBe('http://pump.test:8080/api/events');
    expect(init.headers).toEqual({ Accept: 'text/event-stream', Authorization: 'Bearer tok-1' });

    // An event split across pieces, a keep-alive, CRLF lines, and an event of another kind.
    stream.push('retry: 3000\nevent: state\ndata: {"motor":');
    stream.push('{"state":"IDLE"}}\n\n: keep-alive\n\n');
    stream.push('event: state\r\ndata: {"a":1}\r\n\r\nevent: other\ndata: x\n\n');
    await settle();
    expect(seen).toEqual(['alive', 'alive', 'state {"motor":{"state":"IDLE"}}', 'alive', 'state {"a":1}']);
    stream.end();
    await settle();
    expect(seen[seen.length - 1]).toBe('ended');
  });

  test('a refused stream, a failed fetch and a signed-out client each end it; a close ends it quietly', async () => {
    for (const fail of [
      async () => answer(false).response,
      async () => ({ ok: true, body: null }),
      async () => {
        throw new TypeError('Network request failed');
      },
    ]) {
      const { seen, handlers } = recorder();
      openEvents(client, fail)(handlers);
      await settle();
      expect(seen).toEqual(['ended']);
    }
    const signedOut = { baseUrl: client.baseUrl, accessToken: async () => Promise.reject(new Error('not signed in')) };
    const { seen, handlers } = recorder();
    openEvents(signedOut, jest.fn())(handlers);
    await settle();
    expect(seen).toEqual(['ended']);

    const stream = answer();
    let signal: AbortSignal | undefined;
    const quiet = recorder();
    const close = openEvents(client, async (_url, init) => {
      signal = init.signal;
      return stream.response;
    })(quiet.handlers);
    await settle();
    stream.push('event: state\ndata: {}\n\n');
    await settle();
    close();
    await settle();
    expect(signal!.aborted).toBe(true);
    expect(quiet.seen).toEqual(['alive', 'state {}']);
  });
});
