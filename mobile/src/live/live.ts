// The live state of the caller's motor: what the server last said, whether it can be reached,
// and what a tap is expected to change until the server answers.
//
// `LiveStore` holds the state; a `Feed` brings it new status: `EventStreamFeed` (`events.ts`, the
// server's event stream `GET /api/events`, each event a `store.event(status)`), with
// `PollingFeed` (GET /api/motor/status every few seconds) until the stream's first event and
// whenever the stream fails. Both only while the app is in front.
import { OfflineError } from '../api/client';
import type { Entry, Queue, Status } from '../api/types';

export type Connection = 'connecting' | 'online' | 'offline';
export type Pending = 'start' | 'stop' | null;

export interface LiveSnapshot {
  /** What the screens show: the server's last status, or a tap's expected result until the answer. */
  status: Status | null;
  /** Client time at which `status.motor.remainingSeconds` was true (for the countdown). */
  receivedAt: number;
  connection: Connection;
  /** Client time of the last answer from the server. */
  lastContact: number | null;
  /** A tap waiting for its answer. */
  pending: Pending;
  /** Counts every status received, so screens that show more (the queue) can load again. */
  version: number;
  /**
   * The line as of the status shown, when the event that brought it carried the line (screens
   * need not read it); null when the status came from a poll or a tap's answer.
   */
  queue: Queue | null;
}

export interface MotorApi {
  status(): Promise<Status>;
  start(minutes?: number): Promise<Entry>;
  stop(): Promise<Entry>;
}

/** Brings status to a store: the server's event stream, or polling. */
export interface Feed {
  start(): void;
  stop(): void;
  /** Something changed here (a tap): fetch now rather than at the next tick. */
  poke(): void;
}

const ACTIVE = new Set(['RUNNING', 'HOLD']);

export class LiveStore {
  private snap: LiveSnapshot = {
    status: null,
    receivedAt: 0,
    connection: 'connecting',
    lastContact: null,
    pending: null,
    version: 0,
    queue: null,
  };
  /** The server's own last word, kept apart from an optimistic guess. */
  private server: { status: Status; receivedAt: number } | null = null;
  /** Bumped by every tap: a status request begun before a tap answered is older news. */
  private generation = 0;
  private listeners = new Set<() => void>();

  constructor(
    private readonly api: MotorApi,
    private readonly now: () => number = Date.now,
  ) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): LiveSnapshot => this.snap;

  private set(patch: Partial<LiveSnapshot>) {
    this.snap = { ...this.snap, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Fetches the status once; used by the polling feed. Never throws. */
  async pull(): Promise<void> {
    const generation = this.generation;
    try {
      const status = await this.api.status();
      if (generation !== this.generation || this.snap.pending) return;
      this.receive(status);
    } catch (err) {
      this.failed(err);
    }
  }

  /** A status straight from the server (a poll's answer, or an event, with the line it carried). */
  private receive(status: Status, queue: Queue | null = null) {
    const receivedAt = this.now();
    this.server = { status, receivedAt };
    this.set({ status, receivedAt, connection: 'online', lastContact: receivedAt, version: this.snap.version + 1, queue });
  }

  /**
   * A status the server sent by itself (an event of its stream): the newest news, so a poll begun
   * before it is dropped when it answers. Not shown while a tap waits for its answer: the state
   * it shows is older than the tap, and the answer and the next event bring the new one.
   */
  event(status: Status, queue: Queue | null = null) {
    if (this.snap.pending) return;
    this.generation++;
    this.receive(status, queue);
  }

  failed(err: unknown) {
    if (err instanceof OfflineError) this.set({ connection: 'offline' });
    // Other errors (a 403 for a master, a 503) leave the last status; screens show their own.
  }

  /** Start: shows the expected state at once, then the server's answer. Throws the server's refusal. */
  async start(minutes?: number): Promise<Entry> {
    return this.mutate('start', (s) => predictStart(s, minutes), () => this.api.start(minutes), applyStartAnswer);
  }

  /** Stop (or leave the queue). Throws the server's refusal. */
  async stop(): Promise<Entry> {
    return this.mutate('stop', predictStop, () => this.api.stop(), applyStopAnswer);
  }

  private async mutate(
    pending: Exclude<Pending, null>,
    predict: (s: Status) => Status,
    call: () => Promise<Entry>,
    apply: (s: Status, entry: Entry) => Status,
  ): Promise<Entry> {
    this.generation++;
    const before = this.server;
    if (before) this.set({ status: predict(before.status), pending });
    else this.set({ pending });
    try {
      const entry = await call();
      this.generation++;
      const base = this.server ?? before;
      if (base) {
        const status = apply(base.status, entry);
        const receivedAt = this.now();
        this.server = { status, receivedAt };
        this.set({ status, receivedAt, pending: null, connection: 'online', lastContact: receivedAt, version: this.snap.version + 1, queue: null });
      } else {
        this.set({ pending: null });
      }
      return entry;
    } catch (err) {
      this.generation++;
      // The guess was wrong: back to what the server last said.
      this.set({ status: this.server?.status ?? null, receivedAt: this.server?.receivedAt ?? 0, pending: null });
      this.failed(err);
      throw err;
    }
  }
}

function isLiveStatus(s: string): s is 'RUNNING' | 'HOLD' | 'WAITING' {
  return ACTIVE.has(s) || s === 'WAITING';
}

function isMine(status: Status): boolean {
  const entry = status.me.entry;
  return !!entry && (ACTIVE.has(entry.status) || entry.status === 'WAITING');
}

/** What a start will most likely give: the motor if it is free, else a place in the line. */
export function predictStart(status: Status, minutes?: number): Status {
  if (isMine(status)) return status;
  const free = status.motor.state === 'IDLE';
  const limit = minutes ? Math.min(minutes * 60, status.me.availableSeconds) : status.me.availableSeconds;
  const entry: Entry = {
    id: 'pending',
    userId: '',
    userName: '',
    adminId: '',
    status: free ? 'RUNNING' : 'WAITING',
    position: free ? null : null,
    remainingSeconds: free ? limit : null,
  };
  return {
    ...status,
    motor: free ? { state: 'RUNNING', remainingSeconds: limit, activeUserId: null, holdReason: null } : status.motor,
    me: { ...status.me, state: free ? 'RUNNING' : 'WAITING', entry },
  };
}

/** What a stop will most likely give: no entry, and the motor free if it was ours. */
export function predictStop(status: Status): Status {
  const entry = status.me.entry;
  if (!entry) return status;
  const wasActive = ACTIVE.has(entry.status);
  return {
    ...status,
    motor: wasActive ? { state: 'IDLE' } : status.motor,
    me: { ...status.me, state: 'IDLE', entry: null },
  };
}

/** The server's answer to a start (the entry) folded into the last status. */
export function applyStartAnswer(status: Status, entry: Entry): Status {
  const active = ACTIVE.has(entry.status);
  return {
    ...status,
    motor: active
      ? {
          state: entry.status as 'RUNNING' | 'HOLD',
          holdReason: entry.holdReason ?? null,
          remainingSeconds: entry.remainingSeconds ?? null,
          activeUserId: entry.userId,
        }
      : status.motor,
    me: { ...status.me, state: isLiveStatus(entry.status) ? entry.status : 'IDLE', entry },
  };
}

/** The server's answer to a stop (the ended entry, with the new balance) folded in. */
export function applyStopAnswer(status: Status, entry: Entry): Status {
  const balance = entry.availableSeconds ?? status.me.availableSeconds;
  const wasActive = status.motor.activeUserId === entry.userId || ACTIVE.has(status.me.entry?.status ?? '');
  return {
    ...status,
    // The next in line may have started; the poke after this fetches the truth.
    motor: wasActive ? { state: 'IDLE' } : status.motor,
    me: { state: 'IDLE', entry: null, availableSeconds: balance, availableMinutes: Math.floor(balance / 60) },
  };
}

/** Polls the status every `intervalMs` while started. */
export class PollingFeed implements Feed {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private inFlight = false;
  private again = false;

  constructor(
    private readonly store: Pick<LiveStore, 'pull'>,
    private readonly intervalMs = 3000,
  ) {}

  start() {
    if (this.running) return;
    this.running = true;
    void this.tick();
  }

  stop() {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  poke() {
    if (!this.running) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    void this.tick();
  }

  private async tick() {
    this.timer = null;
    this.inFlight = true;
    try {
      await this.store.pull();
    } finally {
      this.inFlight = false;
    }
    if (!this.running) return;
    if (this.again) {
      this.again = false;
      void this.tick();
      return;
    }
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
  }
}
