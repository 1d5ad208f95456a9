"""SecantusDB as PumpPilot's tests and fleet bench start it (crates/store-mongodb/src/testing.rs).

SecantusDB, the stand-in MongoDB-wire store, is one Python process with a thread per client
connection. Python's cyclic garbage collector stops every thread of it while it scans. Measured
with the fleet bench (10,000 returning MQTT devices on one server, docs/MEASUREMENTS.md,
"SecantusDB's garbage collector"): with Python's own settings, a full collection (generation 2)
came every few seconds while the fleet came online and took 84 ms on average, up to 151 ms, and
every store call waiting behind it (a farmer's Start among them) waited as long; the young
generations took 0.1 and 1.6 ms.
This launcher tunes the collector of the store's deployment here, nothing of PumpPilot's:

- ``PUMPPILOT_SECANTUSDB_GC=tuned`` (the default): once the server accepts connections, what
  start-up made (modules, the server's own objects: about 31,000) is collected once and frozen
  (``gc.freeze()``: never scanned again), and the thresholds are (700, 10, 1,000,000): the young
  generations as Python has them, and no full collection in a process's lifetime here. The price:
  cyclic garbage that outlives two young collections is never freed (SecantusDB's resident
  memory after the 10,000-device bench: 228 and 256 MB, against 213 and 231 MB with Python's
  settings). The Starts' p99 in that bench, back to back: 36 ms tuned, 274 ms untuned.
  (A young generation of 20,000 instead of 700 was tried: 17 ms a collection, worse.)
- ``PUMPPILOT_SECANTUSDB_GC=default``: Python's own collector, untouched (for comparison).
- ``PUMPPILOT_SECANTUSDB_GC=T0,T1,T2``: start-up frozen, and these thresholds (for experiments).

SecantusDB's bookkeeping is made cheap (``PUMPPILOT_SECANTUSDB_SWEEPS=tuned``, the default;
``default`` leaves it as SecantusDB has it): its profiler settings are kept in memory rather than
read from a table after every command (``remember_profile_settings``), and two sweeps, both under
its one transaction-registry lock, which every write takes, are made cheap:

- The replies kept for retryable writes (so that a driver's retry is answered, not run twice: 30
  minutes, at most 10,000) were swept on every write by walking all of them, and once 10,000 were
  kept, by sorting all of them. They are kept in the order they were written, so the sweep now
  drops from the oldest end only what is over the age or the cap.
- Open transactions past their lifetime (60 s) were reaped on every statement, commit and abort
  by taking each open transaction's lock in turn, and a transaction's lock is held while one of
  its statements runs: every transaction's start and commit, and every write through the registry,
  waited for every statement running anywhere. The reaper now runs at most once a second and
  passes over a transaction whose statement is running (it is in use, not idle; the next sweep
  looks at it again).

Measured with the fleet bench at 100,000 devices (docs/MEASUREMENTS.md): with SecantusDB's own sweeps, its
process used about half a core while dozens of threads waited for that lock; the store answered
about 60 devices coming online a second.

``PUMPPILOT_SECANTUSDB_PLANNER=tuned`` (the default; ``default`` leaves it as SecantusDB has it):
a statement whose filter names one ``_id`` among other fields (PumpPilot's writes name the tenant
too, ``{_id, adminId}``, or the version they expect, ``{_id, version}``) is planned as a look-up of
that one document, as MongoDB plans it (``plan_by_id``). SecantusDB takes its ``_id`` short cut
only for a filter of ``_id`` alone; for any other it first tries every index of the collection in
turn, reading the index catalogue again for each try, before it looks the ``_id`` up after all.
Measured with the fleet bench (10,000 returning MQTT devices on one server, a hand-started store,
docs/MEASUREMENTS.md, "SecantusDB's planner"): the store's CPU from 315 s to 249 s, and every
device present 243 s after the first connected instead of 283 s.

``PUMPPILOT_SECANTUSDB_SWITCH_MS=N`` (unset by default) sets Python's thread switch interval (its
own is 5 ms: how long a busy thread keeps the interpreter from one waiting for it), for experiments.

``PUMPPILOT_SECANTUSDB_FEED`` paces the change streams (``pace_feeds``): ``tuned`` (the default)
lets a stream that has just delivered events read the oplog again no sooner than 10 ms later, ``N``
sets that pause to N ms, ``default`` leaves SecantusDB as it is. A change stream's ``getMore``
reads the oplog at once and, finding nothing, waits for the next write and reads again; with 7
servers watching, every write woke 7 readers, each of which opened a storage session and a cursor
on every oplog table to read one entry. Measured with ``crates/store-mongodb/tools/statement_cost.py``
(docs/MEASUREMENTS.md, "Paced change streams"). A stream that has been quiet for the pause is read at once, so a
lone change (a farmer's Start) is not held; while changes stream in, each is held at most the pause,
and each read returns all that came meanwhile. The report line ``pumppilot-feed`` counts, since
start: oplog reads by change streams, reads that returned events, reads that waited for the pause,
and the shortest time in ms from a read that returned events to the same stream's next read.

Either way it reports what the collector did: each second that something changed, one line to
standard error (the server's log), ``pumppilot-gc`` and, since start: collections of generation
0, 1 and 2; milliseconds spent in each; the longest pause in ms; pauses of at least 10, 50, 100
and 250 ms (`testing::TestServer::collector` reads the last one).
"""

import gc
import os
import socket
import sys
import threading
import time

THRESHOLDS = (700, 10, 1_000_000)

collections = [0, 0, 0]
spent = [0.0, 0.0, 0.0]
longest = [0.0]
BUCKETS = (10.0, 50.0, 100.0, 250.0)
over = [0, 0, 0, 0]
began = [0.0]


def watch(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - began[0]) * 1000.0
    generation = info.get("generation", 0)
    collections[generation] += 1
    spent[generation] += ms
    if ms > longest[0]:
        longest[0] = ms
    for i, bound in enumerate(BUCKETS):
        if ms >= bound:
            over[i] += 1


def line():
    numbers = collections + [round(x, 1) for x in spent] + [round(longest[0], 1)] + over
    return "pumppilot-gc " + " ".join(str(n) for n in numbers)


def report():
    last, last_feed = None, None
    while True:
        time.sleep(1.0)
        now = line()
        if now != last:
            sys.stderr.write(now + "\n")
            sys.stderr.flush()
            last = now
        feed = feed_line()
        if feed is not None and feed != last_feed:
            sys.stderr.write(feed + "\n")
            sys.stderr.flush()
            last_feed = feed


def argument(name, default):
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def tune(mode):
    """Once the server accepts connections: collect, freeze what is there, raise the thresholds."""
    host, port = argument("--host", "127.0.0.1"), int(argument("--port", "27017"))
    while True:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            break
        except OSError:
            time.sleep(0.05)
    thresholds = THRESHOLDS if mode == "tuned" else tuple(int(x) for x in mode.split(","))
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    sys.stderr.write(
        "pumppilot-gc-tuned frozen=%d thresholds=%s\n" % (gc.get_freeze_count(), ",".join(map(str, thresholds)))
    )
    sys.stderr.flush()


def sweep_cheaply():
    """SecantusDB's sweeps of kept retryable-write replies and of idle transactions, made cheap
    (see the module's doc)."""
    from secantus import transactions

    registry = transactions.TransactionRegistry

    def prune_retryable(self):
        replies = self._retryable
        cutoff = self._time() - transactions._RETRYABLE_RECORD_LIFETIME_SECONDS
        excess = len(replies) - transactions._RETRYABLE_RECORD_MAX
        while replies:
            oldest = next(iter(replies))
            if excess <= 0 and replies[oldest][1] >= cutoff:
                break
            del replies[oldest]
            excess -= 1

    def reap_idle(self):
        now = time.monotonic()
        if now < getattr(self, "_pumppilot_next_reap", 0.0):
            return 0
        self._pumppilot_next_reap = now + 1.0
        cutoff = self._time() - self._lifetime
        reaped = 0
        for txn in list(self._txns.values()):
            if not txn.mutex.acquire(blocking=False):
                continue
            try:
                if txn.state is transactions.TxnState.IN_PROGRESS and txn.last_use < cutoff:
                    self._rollback_quietly(txn)
                    txn.state = transactions.TxnState.ABORTED
                    reaped += 1
            finally:
                txn.mutex.release()
        return reaped

    registry._prune_retryable_locked = prune_retryable
    registry._prune_locked = reap_idle
    remember_profile_settings()
    sys.stderr.write("pumppilot-sweeps-tuned\n")
    sys.stderr.flush()


def remember_profile_settings():
    """SecantusDB looks up a database's profiler settings after every command, in a table read
    under its one storage lock: about a ninth of its time while a fleet of 100,000 came online
    (``py-spy record``). They change only through ``profile`` (``Storage.set_profile``), so they
    are kept in memory, read from the table once and replaced whenever they are set; both under
    that lock, so a lookup never keeps settings older than the last ones set."""
    from secantus import storage

    store = storage.Storage
    read, write = store.get_profile, store.set_profile

    def get_profile(self, db):
        kept = self.__dict__.setdefault("_pumppilot_profiles", {})
        settings = kept.get(db)
        if settings is None:
            with self._lock:
                settings = kept.get(db)
                if settings is None:
                    settings = kept[db] = read(self, db)
        return dict(settings)

    def set_profile(self, db, **settings):
        with self._lock:
            write(self, db, **settings)
            self.__dict__.setdefault("_pumppilot_profiles", {}).pop(db, None)

    store.get_profile = get_profile
    store.set_profile = set_profile


def plan_by_id():
    """A statement whose filter names one ``_id`` among other fields is planned as what it is, a
    look-up of that one document (see the module's doc): the candidates are the document with
    that ``_id``, if any, and SecantusDB's ``matches()`` checks the rest of the filter on it, as
    it does on any candidate. Filters with a collation, a top-level operator (``$or``...) or an
    ``_id`` that is not a point (a range, a regex, a sub-document) go the way they always did."""
    from secantus import storage

    store = storage.Storage
    plan = store._try_index_id_keys

    def try_index_id_keys(self, db, coll, filter, *, collation=None):
        if collation is None and filter and len(filter) > 1 and "_id" in filter:
            if not any(isinstance(f, str) and f.startswith("$") for f in filter):
                keys = storage._id_point_lookup_keys(filter["_id"])
                if keys is not None and not self._is_timeseries(db, coll):
                    found = (self._doc_recordid(db, coll, key) for key in keys)
                    return [recordid for recordid in found if recordid is not None]
        return plan(self, db, coll, filter, collation=collation)

    store._try_index_id_keys = try_index_id_keys
    sys.stderr.write("pumppilot-planner-tuned\n")
    sys.stderr.flush()


# What the paced change streams did (``pace_feeds``; None while they are not paced): reads, reads
# that returned events, reads that waited for the pause, the shortest time from a delivering read
# to the next read of its stream.
feed_counts = None


def feed_line():
    if feed_counts is None:
        return None
    shortest = feed_counts["shortest"]
    return "pumppilot-feed %d %d %d %s" % (
        feed_counts["reads"],
        feed_counts["delivered"],
        feed_counts["paced"],
        "-" if shortest is None else "%.1f" % shortest,
    )


def pace_feeds(pause_ms):
    """A change stream that has just delivered events reads the oplog again no sooner than
    ``pause_ms`` later (see the module's doc). The pause is taken in the stream's own connection
    thread before its read, holding no lock of the store's."""
    global feed_counts
    from secantus import commands

    feed_counts = {"reads": 0, "delivered": 0, "paced": 0, "shortest": None}
    drain = commands._drain_change_stream_producer
    pause = pause_ms / 1000.0
    lock = threading.Lock()

    def paced_drain(entry):
        if entry.remaining or entry.producer is None or not entry.change_stream:
            return drain(entry)
        delivered_at = getattr(entry, "_pumppilot_delivered_at", None)
        waited = False
        if delivered_at is not None:
            wait = delivered_at + pause - time.monotonic()
            if wait > 0:
                time.sleep(wait)
                waited = True
        started = time.monotonic()
        drain(entry)
        with lock:
            feed_counts["reads"] += 1
            if waited:
                feed_counts["paced"] += 1
            if delivered_at is not None:
                gap = (started - delivered_at) * 1000.0
                if feed_counts["shortest"] is None or gap < feed_counts["shortest"]:
                    feed_counts["shortest"] = gap
            if entry.remaining:
                feed_counts["delivered"] += 1
        entry._pumppilot_delivered_at = time.monotonic() if entry.remaining else None

    commands._drain_change_stream_producer = paced_drain
    sys.stderr.write("pumppilot-feed-paced %s ms\n" % pause_ms)
    sys.stderr.flush()


def launch():
    mode = os.environ.get("PUMPPILOT_SECANTUSDB_GC", "tuned").strip() or "tuned"
    gc.callbacks.append(watch)
    switch = os.environ.get("PUMPPILOT_SECANTUSDB_SWITCH_MS", "").strip()
    if switch:
        sys.setswitchinterval(float(switch) / 1000.0)
        sys.stderr.write("pumppilot-switch-interval %s ms\n" % switch)
    threading.Thread(target=report, name="pumppilot-gc-report", daemon=True).start()
    if mode != "default":
        threading.Thread(target=tune, args=(mode,), name="pumppilot-gc-tune", daemon=True).start()
    if os.environ.get("PUMPPILOT_SECANTUSDB_SWEEPS", "tuned").strip() != "default":
        sweep_cheaply()
    if os.environ.get("PUMPPILOT_SECANTUSDB_PLANNER", "tuned").strip() != "default":
        plan_by_id()
    feed = os.environ.get("PUMPPILOT_SECANTUSDB_FEED", "tuned").strip() or "tuned"
    if feed != "default":
        pace_feeds(10.0 if feed == "tuned" else float(feed))
    from secantus.cli import main

    sys.exit(main())


if __name__ == "__main__":
    launch()
