"""What one update statement costs the store, with and without servers watching: SecantusDB's CPU
seconds (from /proc) for ``--statements`` presence joins written as ``update`` commands of 1, 8,
64 and 256 statements, first with no change stream open, then with ``--watchers`` streams tailing
the database live (one per server, as ``crates/store-mongodb/src/feed.rs`` opens it).

    target/secantusdb/venv/bin/python crates/store-mongodb/tools/statement_cost.py [--statements 1024] [--watchers 7]

(from the workspace, once a test has installed SecantusDB into ``target/secantusdb``; one
measurement at a time: a busy machine moves CPU time too.) The store runs through PumpPilot's
launcher, so its change streams are paced as the tests and the bench have them;
``PUMPPILOT_SECANTUSDB_FEED=default`` in the environment measures them as SecantusDB has them.
"""

import argparse
import os
import sys
import threading
import time

from pymongo import MongoClient, UpdateOne

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from feed_cost import cpu_seconds, start_store, tenant_doc  # noqa: E402


def run(statements, per_command, watchers):
    process, url = start_store()
    try:
        client = MongoClient(url)
        tenants = client["cost"].tenants
        tenants.insert_many([tenant_doc(i) for i in range(statements)])
        stop = threading.Event()

        def watch():
            with MongoClient(url)["cost"].watch(max_await_time_ms=100) as stream:
                while not stop.is_set():
                    stream.try_next()

        threads = [threading.Thread(target=watch, daemon=True) for _ in range(watchers)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        before = cpu_seconds(process.pid)
        for start in range(0, statements, per_command):
            joins = [
                UpdateOne({"_id": i}, {"$max": {"lastPollAt": 5 + i}, "$set": {"presence": {"server": "s1", "device": i}}})
                for i in range(start, min(statements, start + per_command))
            ]
            tenants.bulk_write(joins, ordered=False)
        spent = cpu_seconds(process.pid) - before
        stop.set()
        for thread in threads:
            thread.join()
        return spent
    finally:
        process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1024)
    parser.add_argument("--watchers", type=int, default=7)
    args = parser.parse_args()
    for watchers in (0, args.watchers):
        for per_command in (1, 8, 64, 256):
            spent = run(args.statements, per_command, watchers)
            print(
                f"{watchers} watching, {per_command:3d} statements a command: "
                f"{spent / args.statements * 1000:.2f} ms of the store's CPU a statement",
                flush=True,
            )


if __name__ == "__main__":
    main()
