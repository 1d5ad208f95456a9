#!/usr/bin/env python3
"""What the owner's pump screen costs on the wire while it is left open, as the app reads it.

Starts the server (a fresh SQLite file in a temporary folder), gives an owner a pump with
FARMERS farmers, a recharge with a receipt each, and RUNS short runs (the two weeks' usage and
receipts the screen sums), then reads the screen's lists as the app does with each status,
ROUNDS times a second apart after the screen's first reads (in full either way), and counts
every byte sent and received (request and answer heads included, over a raw socket, as a
phone's data plan counts them; the device's polls go on a connection of their own, not counted):

- "every list in full": the six reads of the screen before it kept tags (status, devices, line,
  usage, receipts, farmers), each answered in full;
- "as the app reads now": the five reads it makes with each status, each sending back the tag of
  the answer it holds (`If-None-Match`), the farmers left out (read only when the runs name
  another farmer).

Both while the pump is idle and during a run (when the status, the line and the farmers' balances
move every second).

Then a farmer's phone with the app in front for MINUTE seconds, idle and during their own run:
the status polled every 3 s (each read sending its tag back), against the live event stream
(`GET /api/events`, one request; the server sends a state at every change and every 15 s at
least), which is how the app hears its pump now.

Usage: python3 mobile/tools/read_cost.py [path to pumppilot] (default target/release/pumppilot);
READ_COST_SHOW=1 prints each read's status and length.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

FARMERS = 20
RUNS = 120
ROUNDS = 10
MINUTE = 60
POLL_EVERY = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """HTTP/1.1 over one kept-alive socket, counting the bytes each way."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.sent = 0
        self.received = 0

    def request(self, method, path, token=None, body=None, headers=None):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept: application/json"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
        self.sock.sendall(raw)
        self.sent += len(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.recv()
        head, rest = buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ")[1])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, value = line.split(b":", 1)
            fields[name.strip().lower().decode()] = value.strip().decode()
        length = int(fields.get("content-length", "0"))
        while len(rest) < length:
            rest += self.recv()
        self.received += len(head) + 4 + length
        is_json = fields.get("content-type", "").startswith("application/json")
        return status, fields, json.loads(rest) if rest and is_json else None

    def recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def ok(self, method, path, token=None, body=None):
        status, _, answer = self.request(method, path, token, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer


def login(http, username, password, tries=1):
    """A sign-in's access token, asked up to `tries` times a tenth of a second apart."""
    for _ in range(tries - 1):
        status, _, answer = http.request("POST", "/api/mobile/login", body={"username": username, "password": password})
        if status == 200:
            return answer["accessToken"]
        time.sleep(0.1)
    return http.ok("POST", "/api/mobile/login", body={"username": username, "password": password})["accessToken"]


def seed(http):
    # The master is made just after the server starts listening.
    master = login(http, "master", "master-password-for-read-cost", tries=50)
    http.ok("POST", "/api/master/admins", master, {"name": "Rahim Uddin", "username": "rahim", "password": "rahim-password"})
    owner = login(http, "rahim", "rahim-password")
    farmers = []
    for i in range(FARMERS):
        username = f"0171100{i:04d}"
        user = http.ok("POST", "/api/admin/users", owner, {"name": f"Farmer {i + 1}", "username": username, "password": f"{username}-password"})
        http.ok("POST", "/api/admin/recharge", owner, {"userId": user["id"], "minutes": 600, "cashTaka": 1000})
        farmers.append(login(http, username, f"{username}-password"))
    key = http.ok("POST", "/api/admin/devices", owner, {"name": "Field pump"})["deviceKey"]
    device = Http(http.port)

    def poll(relay):
        return device.ok("POST", "/api/esp32/poll", key, {"loadShedding": False, "ready": True, "relay": relay})

    poll(False)
    for run in range(RUNS):
        farmer = farmers[run % FARMERS]
        http.ok("POST", "/api/motor/start", farmer, {"minutes": None})
        poll(poll(False)["motor"] == "ON")
        http.ok("POST", "/api/motor/stop", farmer, {})
        poll(False)
    return owner, farmers, poll


def rounds(http, owner, reads, tagged, poll):
    """Bytes each way of one status's reads, averaged over ROUNDS statuses a second apart after
    the screen's first (which reads everything in full either way)."""
    held = {}
    sent = received = 0
    for n in range(ROUNDS + 1):
        poll(poll(False)["motor"] == "ON")  # the pump's device keeps polling, on its own connection
        http.sent = http.received = 0
        for path in reads:
            headers = {"If-None-Match": held[path]} if tagged and path in held else {}
            status, fields, _ = http.request("GET", path, owner, headers=headers)
            assert status in (200, 304), (path, status)
            if os.environ.get("READ_COST_SHOW"):
                print(path, status, fields.get("content-length"))
            if "etag" in fields:
                held[path] = fields["etag"]
        if n > 0:
            sent += http.sent
            received += http.received
        time.sleep(1)
    return sent / ROUNDS, received / ROUNDS


def polled(port, token, seconds):
    """Bytes each way and requests of the status polled every POLL_EVERY s for `seconds`."""
    http = Http(port)
    tag = None
    requests = 0
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        status, fields, _ = http.request("GET", "/api/motor/status", token, headers={"If-None-Match": tag} if tag else {})
        assert status in (200, 304), status
        tag = fields.get("etag", tag)
        requests += 1
        time.sleep(max(0.0, began + requests * POLL_EVERY - time.monotonic()))
    return http.sent, http.received, requests


def streamed(port, token, seconds):
    """Bytes each way and states of the live event stream held for `seconds`."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    sock.sendall(head.encode())
    sock.settimeout(0.25)
    received = b""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.1 200"), received[:80]
    return len(head), len(received), received.count(b"event: state")


def with_device(poll, measure):
    """`measure()` while the pump's device polls every second, its relay following the command
    as a board's does (a relay that says OFF during a run is news, and each would be a state)."""
    stop = threading.Event()

    def device():
        relay = poll(False)["motor"] == "ON"
        while not stop.wait(1):
            relay = poll(relay)["motor"] == "ON"

    thread = threading.Thread(target=device)
    thread.start()
    try:
        return measure()
    finally:
        stop.set()
        thread.join()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/pumppilot"
    if not os.access(binary, os.X_OK):
        sys.exit(f"no server at {binary}: run `cargo build --release` first (or name the binary)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(
            os.environ,
            PUMPPILOT_BIND=f"127.0.0.1:{port}",
            PUMPPILOT_DATABASE_URL=f"sqlite://{folder}/read-cost.db",
            PUMPPILOT_MASTER_USERNAME="master",
            PUMPPILOT_MASTER_PASSWORD="master-password-for-read-cost",
            PUMPPILOT_MIN_OFF_MS="0",
            PUMPPILOT_GRID_SETTLE_MS="0",
            PUMPPILOT_MAX_STARTS_PER_HOUR="0",
            PUMPPILOT_LOG="warn",
        )
        server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            http = Http(port)
            for _ in range(100):
                try:
                    http.request("GET", "/healthz")
                    break
                except OSError:
                    http.sock = None
                    time.sleep(0.1)
            owner, farmers, poll = seed(http)
            since = (datetime.now(timezone.utc) - timedelta(days=13)).strftime("%Y-%m-%dT00:00:00Z")
            lists = ["/api/motor/status", "/api/admin/devices", "/api/queue", f"/api/admin/usage?from={since}", f"/api/admin/receipts?from={since}"]
            before, after = lists + ["/api/admin/users"], lists
            print(f"{FARMERS} farmers, {RUNS} runs and {FARMERS} receipts in two weeks; bytes a status (the app reads every 3 s: x 20 for a minute)")
            print(f"{'':<12}{'every list in full':>28}{'as the app reads now':>28}{'ratio':>8}")
            for moment in ("idle", "during a run"):
                if moment == "during a run":
                    http.ok("POST", "/api/motor/start", farmers[0], {"minutes": None})
                    poll(poll(False)["motor"] == "ON")
                full = rounds(http, owner, before, False, poll)
                now = rounds(http, owner, after, True, poll)
                cell = lambda sent, got: f"{got:,.0f} down, {sent:,.0f} up"
                print(f"{moment:<12}{cell(*full):>28}{cell(*now):>28}{sum(full) / sum(now):>7.1f}x")
            http.ok("POST", "/api/motor/stop", farmers[0], {})
            poll(False)
            print(f"\na farmer's phone, the app in front for {MINUTE} s: bytes and requests")
            print(f"{'':<12}{f'status polled every {POLL_EVERY} s':>34}{'the live event stream':>34}{'ratio':>8}")
            for moment in ("idle", "during a run"):
                if moment == "during a run":
                    # A connection of its own: the first has been idle longer than the server keeps one.
                    Http(port).ok("POST", "/api/motor/start", farmers[0], {"minutes": None})
                    poll(poll(False)["motor"] == "ON")
                sent, got, asked = with_device(poll, lambda: polled(port, farmers[0], MINUTE))
                s_sent, s_got, states = with_device(poll, lambda: streamed(port, farmers[0], MINUTE))
                left = f"{got + sent:,} ({asked} requests)"
                right = f"{s_got + s_sent:,} (1 request, {states} states)"
                print(f"{moment:<12}{left:>34}{right:>34}{(got + sent) / (s_got + s_sent):>7.1f}x")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
