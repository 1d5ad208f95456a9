// The motor's state over the server's event stream (`GET /api/events`, server-sent events): the
// server tells the app of every change of its pump the moment it is committed, and at least every
// 15 s, on one connection, where polling asked every 3 s. A farmer sees another's Start at once,
// and a phone on a data plan makes one request where it made twenty an idle minute.
//
// Polling stays the fallback, and the state is never worse than with polling alone: it runs from
// the start until the stream's first event, and again whenever the stream is refused, ends, or
// falls silent, while the stream is tried again after a pause that doubles up to a minute.
import { createParser } from 'eventsource-parser';

import { OfflineError, type ApiClient } from '../api/client';
import type { Queue, Status } from '../api/types';
import type { Feed, LiveStore } from './live';

/** The server sends a state at least every 15 s: a stream silent for this long is gone. */
export const SILENT_MS = 20_000;
/** The pause before the stream is tried again, doubled after each try that brings no event. */
export const RETRY_MS = 3_000;
export const RETRY_MOST_MS = 60_000;

/** What a stream tells the feed. */
export interface StreamHandlers {
  /** Bytes arrived: an event, or the server's keep-alive. */
  alive(): void;
  /** A `state` event's data: the JSON of `GET /api/motor/status` with the queue and the unread count. */
  state(data: string): void;
  /**
   * The stream is over: refused (a 401 among them: polling's next read renews the token or ends
   * the session, and the next try takes the new token), unreachable, or ended by the server.
   */
  ended(): void;
}

/** Opens a stream; the function returned closes it (and `ended` is not called then). */
export type OpenStream = (handlers: StreamHandlers) => () => void;

export class EventStreamFeed implements Feed {
  private running = false;
  /** Closes the stream open now. */
  private close: (() => void) | null = null;
  /** The stream open now has brought an event: polling rests. */
  private streaming = false;
  private silence: ReturnType<typeof setTimeout> | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private pause = RETRY_MS;

  constructor(
    private readonly store: Pick<LiveStore, 'event' | 'pull' | 'failed'>,
    private readonly open: OpenStream,
    private readonly polling: Feed,
  ) {}

  start() {
    if (this.running) return;
    this.running = true;
    this.pause = RETRY_MS;
    this.polling.start();
    this.connect();
  }

  stop() {
    this.running = false;
    this.disconnect();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.polling.stop();
  }

  /**
   * After a tap (or a pull to refresh): one status now. The stream's state of the tap's change
   * may have come while the tap waited for its answer, and was not shown then (`LiveStore.event`).
   */
  poke() {
    if (!this.running) return;
    if (this.streaming) void this.store.pull();
    else this.polling.poke();
  }

  private connect() {
    this.retry = null;
    let open = true;
    const close = this.open({
      alive: () => {
        if (open) this.watch();
      },
      state: (data) => {
        if (!open) return;
        const state = parseState(data);
        if (!state) return;
        this.store.event(state.status, state.queue);
        if (!this.streaming) {
          this.streaming = true;
          this.pause = RETRY_MS;
          this.polling.stop();
        }
      },
      ended: () => {
        if (!open) return;
        open = false;
        this.lost();
      },
    });
    // A stream that ended before `open` returned has been let go of already (`lost`).
    if (!open) return;
    this.close = () => {
      open = false;
      close();
    };
    this.watch();
  }

  private disconnect() {
    if (this.silence) clearTimeout(this.silence);
    this.silence = null;
    this.close?.();
    this.close = null;
    this.streaming = false;
  }

  /** The stream failed or fell silent: poll meanwhile, and try it again after a pause. */
  private lost() {
    this.disconnect();
    if (!this.running) return;
    // Polling asks at once when it starts (it runs already while no stream has spoken): the phone
    // may be offline, or the session over, and its answer says which.
    this.polling.start();
    this.retry = setTimeout(() => this.connect(), this.pause);
    this.pause = Math.min(this.pause * 2, RETRY_MOST_MS);
  }

  /**
   * A stream that spoke and then fell silent past the server's promise (a state every 15 s) means
   * the server cannot be reached (a mobile link dropped without a word): said at once, not after
   * the poll that follows has waited out its own timeout too; that poll's answer says "online"
   * again. A stream that never spoke says nothing of the link (a proxy may hold its events back
   * while polls pass): polling, which runs meanwhile, tells.
   */
  private watch() {
    if (this.silence) clearTimeout(this.silence);
    this.silence = setTimeout(() => {
      if (this.streaming) this.store.failed(new OfflineError());
      this.lost();
    }, SILENT_MS);
  }
}

/**
 * An event's state, and the line it carries (null when it carries none the app can read), or null
 * for a state the app cannot read (it waits for the next).
 */
function parseState(data: string): { status: Status; queue: Queue | null } | null {
  try {
    const value = JSON.parse(data) as (Partial<Status> & { queue?: Partial<Queue> | null }) | null;
    if (!value || typeof value.motor !== 'object' || typeof value.me !== 'object' || typeof value.device !== 'object') return null;
    const queue = value.queue && Array.isArray(value.queue.waiting) ? (value.queue as Queue) : null;
    return { status: value as Status, queue };
  } catch {
    return null;
  }
}

/** A `fetch` whose answer's body can be read as it comes: `expo/fetch` (the browser's own on the web build). */
export type FetchStreaming = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal },
) => Promise<{ ok: boolean; body: ReadableStream<Uint8Array> | null }>;

/** The event stream of `client`'s server, with its bearer token. */
export function openEvents(client: Pick<ApiClient, 'baseUrl' | 'accessToken'>, fetchStreaming: FetchStreaming): OpenStream {
  return (handlers) => {
    const abort = new AbortController();
    void (async () => {
      try {
        const token = await client.accessToken();
        const response = await fetchStreaming(`${client.baseUrl}/api/events`, {
          headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token}` },
          signal: abort.signal,
        });
        if (!response.ok || !response.body) return;
        const parser = createParser({
          onEvent: (event) => {
            if (event.event === 'state') handlers.state(event.data);
          },
        });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          handlers.alive();
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {
        // Offline, closed, or signed out: the feed polls, and polling says which.
      } finally {
        if (!abort.signal.aborted) handlers.ended();
      }
    })();
    return () => abort.abort();
  };
}
