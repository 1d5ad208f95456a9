"""What the change feed costs the store: SecantusDB's CPU seconds for a stream of tenant updates
watched by several servers, with and without ``fullDocument: updateLookup``.

Each run starts its own SecantusDB (PumpPilot's launcher, data in memory), stores ``--tenants``
tenant documents as PumpPilot writes them, opens ``--watchers`` change streams on the database
(one per server, each its own connection, as ``crates/store-mongodb/src/feed.rs`` opens it) and
writes ``--updates`` presence joins (``$max lastPollAt`` and ``$set presence``, 32 to an update
command, as ``MongoStore::record_presence`` does). By default the watchers read once every update
is written, and the store's CPU time (user + system, from /proc) is counted from then until the
last watcher has read the last event: each watcher reads full batches, so the count is the
store's work for each event and not how often a watcher wakes. With ``--live`` they read while
the writes are made, and the count runs from the first write to the last event read (then how
often each watcher wakes, and how many events each of its reads finds, count as much as the
events). Runs: no watcher (the writes alone), then, alternating ``--rounds`` times, watchers
without a lookup (the feed now) and with ``fullDocument: updateLookup`` (the feed before);
medians are reported.

    target/secantusdb/venv/bin/python crates/store-mongodb/tools/feed_cost.py [--watchers 7] \
        [--tenants 2000] [--updates 4000] [--rounds 3] [--live]

(from the workspace, once a test has installed SecantusDB into ``target/secantusdb``; CPU time
counts the store's own work, but a busy machine still moves it: one measurement at a time.)
"""

import argparse
import datetime
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

from pymongo import MongoClient, UpdateOne

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
LAUNCHER = os.path.join(ROOT, "crates", "store-mongodb", "src", "secantusd.py")
UPDATES_PER_COMMAND = 32
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start_store():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, LAUNCHER, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--storage-path", ":memory:", "--log-level", "WARNING"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise SystemExit("SecantusDB did not start")
            time.sleep(0.05)
    return process, f"mongodb://127.0.0.1:{port}/?directConnection=true"


def tenant_doc(admin):
    return {
        "_id": admin, "version": 0, "suspended": False, "seq": 0, "lastPollAt": None,
        "loadShedding": False, "ready": False, "relay": False, "controllerId": None,
        "minOffMs": None, "gridSettleMs": None, "maxStartsPerHour": None, "motorOn": False,
        "motorOffSince": None, "gridUpSince": None, "motorStarts": [], "hasRun": False,
    }


def run(watchers, tenants, updates, lookup, drain, pace=0.0):
    process, url = start_store()
    try:
        client = MongoClient(url)
        db = client.pumppilot
        admins = [uuid.uuid4().hex for _ in range(tenants)]
        db.tenants.insert_many([tenant_doc(a) for a in admins])
        read = [0] * watchers
        streams = []
        for _ in range(watchers):
            options = {"max_await_time_ms": 250}
            if lookup:
                options["full_document"] = "updateLookup"
            streams.append(MongoClient(url).pumppilot.watch(**options))

        def follow(i):
            while read[i] < updates:
                if streams[i].try_next() is not None:
                    read[i] += 1
                    # With --pace-ms, a watcher that has read what its last batch brought waits
                    # before it asks again, so that its next batch holds more events.
                    if pace and not streams[i]._cursor._data:
                        time.sleep(pace)

        threads = [threading.Thread(target=follow, args=(i,)) for i in range(watchers)]

        def write():
            writes = []
            for n in range(updates):
                admin = admins[n % tenants]
                server = f"server-{n % 7}"
                writes.append(UpdateOne(
                    {"_id": admin},
                    {"$max": {"lastPollAt": T0 + datetime.timedelta(seconds=n)},
                     "$set": {"presence": {"server": server, "device": admin}}},
                ))
                if len(writes) == UPDATES_PER_COMMAND:
                    db.tenants.bulk_write(writes, ordered=False)
                    writes = []
            if writes:
                db.tenants.bulk_write(writes, ordered=False)

        def getmores():
            return client.admin.command("serverStatus")["opcounters"]["getmore"]

        if drain:
            # The writes first, then the watchers read them all: each reads full batches, so
            # what is counted is the store's work for each event, not how often a watcher wakes.
            write()
            before, started, reads = cpu_seconds(process.pid), time.time(), getmores()
            for t in threads:
                t.start()
        else:
            before, started, reads = cpu_seconds(process.pid), time.time(), getmores()
            for t in threads:
                t.start()
            write()
        for t in threads:
            t.join()
        cpu, wall = cpu_seconds(process.pid) - before, time.time() - started
        reads = getmores() - reads
        for s in streams:
            s.close()
        return cpu, wall, reads
    finally:
        process.terminate()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=7)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pace-ms", type=float, default=0.0,
                        help="with --live: how long a watcher waits after each batch it has read")
    parser.add_argument("--live", dest="drain", action="store_false",
                        help="watchers read while the writes are made (how often each wakes counts too)")
    a = parser.parse_args()
    print(f"{a.updates} tenant updates, {a.tenants} tenants, {a.watchers} watchers; load {os.getloadavg()[0]:.1f}")
    alone = statistics.median(run(0, a.tenants, a.updates, False, False)[0] for _ in range(a.rounds))
    print(f"writes alone:          {alone:6.2f} s of the store's CPU (median of {a.rounds})")
    if a.drain:
        alone = 0.0  # the watchers read after the writes: their count is the feed's alone
    results = {False: [], True: []}
    for _ in range(a.rounds):
        # Alternated, so that a change of the machine's load falls on both.
        for lookup in (False, True):
            results[lookup].append(run(a.watchers, a.tenants, a.updates, lookup, a.drain, a.pace_ms / 1000))
    for lookup in (False, True):
        cpu = statistics.median(c for c, _, _ in results[lookup])
        wall = statistics.median(w for _, w, _ in results[lookup])
        reads = statistics.median(r for _, _, r in results[lookup])
        name = "with updateLookup:" if lookup else "without a lookup:"
        runs = " ".join(f"{c:.2f}" for c, _, _ in results[lookup])
        print(f"{name:22} {cpu:6.2f} s of the store's CPU ({wall:.1f} s wall; runs {runs}), "
              f"{1e6 * (cpu - alone) / (a.updates * a.watchers):.0f} µs an event a watcher over the writes; "
              f"{reads:.0f} getMores, {a.updates * a.watchers / max(reads, 1):.1f} events each")
    with_lookup = statistics.median(c for c, _, _ in results[True])
    without = statistics.median(c for c, _, _ in results[False])
    print(f"with / without: {with_lookup / without:.2f}x the store's CPU; "
          f"the feed's part: {(with_lookup - alone) / max(without - alone, 1e-9):.2f}x")

if __name__ == "__main__":
    main()
