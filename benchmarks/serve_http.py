"""`serve --http` under load: 10,000 messages while a client polls the API 20 times a second.

    python benchmarks/serve_http.py [--messages 10000] [--size 1024] [--sessions 10] [--rounds 2]

Each round runs, in alternating order, `serve` without --http and `serve --http` (memory
store), and sends N messages with Postfix's smtp-source (-d: one connection per session). With
--http a poller asks, every 50 ms: the newest 50 messages, a search over all of them, and the
latest message in full (in turn). Reported: the SMTP receive rate (messages / sending wall
time), messages lost (sent minus what `GET /api/v1/info` and serve's own --expect count), and
API latency percentiles. Loopback only; bounded by timeouts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from bench import SMTPCLI, TIMEOUT, free_port, wait_port  # noqa: E402

POLL_PATHS = ("/api/v1/messages?limit=50", "/api/v1/search?query=subject:nothing-matches",
              "/api/v1/message/latest")


class Poller(threading.Thread):
    """GETs the API at a fixed 20/s schedule (no catching up after a slow answer), over one
    kept-alive connection as HTTP clients (fetch, requests sessions, mailpit-api) do;
    ``--new-connections`` opens one per request instead."""

    def __init__(self, base: str, rate: float = 20.0, keep_alive: bool = True) -> None:
        super().__init__(daemon=True)
        self.base, self.period, self.keep_alive = base, 1.0 / rate, keep_alive
        self.latencies: dict[str, list[float]] = {p: [] for p in POLL_PATHS}
        self.errors: list[str] = []
        self.stop_flag = threading.Event()

    def _get(self, conn: http.client.HTTPConnection | None, path: str) -> int:
        if conn is None:
            try:
                with urllib.request.urlopen(self.base + path, timeout=10) as resp:
                    resp.read()
                    return int(resp.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return int(resp.status)

    def run(self) -> None:
        n = 0
        next_at = time.perf_counter()
        parts = urllib.parse.urlsplit(self.base)
        conn = (http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
                if self.keep_alive else None)
        while not self.stop_flag.is_set():
            path = POLL_PATHS[n % len(POLL_PATHS)]
            n += 1
            t = time.perf_counter()
            try:
                status = self._get(conn, path)
                if status == 200:
                    self.latencies[path].append((time.perf_counter() - t) * 1000)
                elif status != 404:  # 404: "latest" before the first message
                    self.errors.append(f"{path}: HTTP {status}")
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{path}: {exc}")
                if conn is not None:
                    conn.close()  # reconnects on the next request
            next_at += self.period
            self.stop_flag.wait(max(0.0, next_at - time.perf_counter()))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def startup_cpu(http: bool) -> float:
    """CPU seconds serve spends starting and stopping with no mail (imports, binding)."""
    port = free_port()
    args = [*SMTPCLI, "serve", "--listen", f"127.0.0.1:{port}", "--grace", "0"]
    http_port = free_port()
    if http:
        args += ["--http", f"127.0.0.1:{http_port}"]
    serve = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    if http:
        wait_port(http_port)
    time.sleep(0.3)  # past the signal handlers being installed
    serve.send_signal(signal.SIGTERM)
    _, _, rusage = os.wait4(serve.pid, 0)
    return float(rusage.ru_utime + rusage.ru_stime)


def run(n: int, size: int, sessions: int, http: bool, poll: bool = True,
        keep_alive: bool = True) -> dict[str, Any]:
    port, http_port = free_port(), free_port()
    args = [*SMTPCLI, "serve", "--listen", f"127.0.0.1:{port}", "--expect", str(n),
            "--exit-after", str(TIMEOUT), "--grace", "2", "--json"]
    if http:
        args += ["--http", f"127.0.0.1:{http_port}"]
    else:
        args += ["--count", str(n)]
    # Events go to a file: a pipe nobody reads fills up and stalls serve.
    log = tempfile.TemporaryFile("w+")
    serve = subprocess.Popen(args, stdout=log, stderr=subprocess.DEVNULL, text=True)
    wait_port(port)
    base = f"http://127.0.0.1:{http_port}"
    poller = None
    if http:
        wait_port(http_port)
    if http and poll:
        poller = Poller(base, keep_alive=keep_alive)
        poller.start()
    t = time.perf_counter()
    subprocess.run(["smtp-source", "-d", "-l", str(size), "-m", str(n), "-s", str(sessions),
                    f"127.0.0.1:{port}"], check=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    row: dict[str, Any] = {"receiver": "serve --http" if http else "serve", "messages": n,
                           "wall_s": round(wall, 3), "messages_per_s": round(n / wall, 1)}
    if http and poller is None:
        row["receiver"] += " (no polling)"
    if poller is not None:
        poller.stop_flag.set()
        poller.join(15)
    if http:
        with urllib.request.urlopen(base + "/api/v1/info", timeout=10) as resp:
            row["api_messages"] = json.loads(resp.read())["Messages"]
    if poller is not None:
        every = [x for v in poller.latencies.values() for x in v]
        row["api_requests"] = len(every)
        row["api_p50_ms"], row["api_p95_ms"] = _pct(every, 0.5), _pct(every, 0.95)
        row["api_max_ms"] = round(max(every), 1) if every else None
        row["api_p95_by_path_ms"] = {p: _pct(v, 0.95) for p, v in poller.latencies.items()}
        row["api_errors"] = poller.errors[:5]
        row["_latencies"] = every
    if http:
        serve.send_signal(signal.SIGTERM)
    _, status, rusage = os.wait4(serve.pid, 0)
    serve.returncode = os.waitstatus_to_exitcode(status)
    # CPU time of the serve process: far steadier than wall time on a shared machine.
    cpu = rusage.ru_utime + rusage.ru_stime
    row["cpu_s"] = round(cpu, 2)
    row["startup_cpu_s"] = round(startup_cpu(http), 2)
    row["cpu_ms_per_1000_msgs"] = round((cpu - row["startup_cpu_s"]) / n * 1_000_000, 1)
    log.seek(0)
    shutdown = json.loads(log.read().strip().splitlines()[-1])
    log.close()
    received = shutdown["facts"]["summary"]["messages"]
    row["received"] = received
    row["lost"] = n - received + (n - row.get("api_messages", n))
    row["expect_ok"] = serve.returncode == 0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--new-connections", action="store_true",
                    help="The poller opens a connection per request (default: keeps one alive).")
    ap.add_argument("--no-poll-too", action="store_true",
                    help="Also run serve --http with nobody polling (what --http itself costs).")
    a = ap.parse_args()
    if shutil.which("smtp-source") is None:
        raise SystemExit("smtp-source not found (Debian package postfix)")
    n = max(100, min(a.messages, 100_000))
    rows = []
    for r in range(a.rounds):  # alternate the order so machine noise hits both sides alike
        for with_http in ((False, True) if r % 2 == 0 else (True, False)):
            rows.append(run(n, a.size, a.sessions, with_http, keep_alive=not a.new_connections))
        if a.no_poll_too:
            rows.append(run(n, a.size, a.sessions, True, poll=False))
    print(f"{n} messages of {a.size} bytes, {a.sessions} smtp-source sessions, loopback\n")
    print(f"{'receiver':<26} {'msg/s':>9} {'CPU s':>6} {'lost':>5} {'API reqs':>9} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for row in rows:
        print(f"{row['receiver']:<26} {row['messages_per_s']:>9,.1f} {row['cpu_s']:>6} {row['lost']:>5} "
              f"{row.get('api_requests', '-'):>9} {row.get('api_p50_ms', '-'):>7} "
              f"{row.get('api_p95_ms', '-'):>7} {row.get('api_max_ms', '-'):>7}")
    plain = [r["messages_per_s"] for r in rows if r["receiver"] == "serve"]
    with_http = [r["messages_per_s"] for r in rows if r["receiver"] == "serve --http"]
    ratio = statistics.median(with_http) / statistics.median(plain)
    # Per message, start-up (imports, binding) taken out: the receive capacity.
    cpu_plain = statistics.median(r["cpu_ms_per_1000_msgs"] for r in rows if r["receiver"] == "serve")
    cpu_http = statistics.median(r["cpu_ms_per_1000_msgs"] for r in rows
                                 if r["receiver"] == "serve --http")
    every = sorted(x for r in rows for x in r.get("_latencies", []))
    p95 = _pct(every, 0.95)
    for r in rows:
        r.pop("_latencies", None)
    print(f"\nreceive rate with --http: {ratio:.0%} of without (wall clock, median of {a.rounds} rounds)")
    print(f"serve's CPU per message with --http and polling: {cpu_http:.0f} vs {cpu_plain:.0f} ms "
          f"per 1,000 (start-up taken out): {cpu_plain / cpu_http:.0%} of the receive capacity")
    print(f"API p95 over all rounds: {p95} ms")
    print(json.dumps({"benchmark": "serve_http", "ratio": round(ratio, 3),
                      "cpu_ratio": round(cpu_plain / cpu_http, 3), "api_p95_ms": p95,
                      "rows": rows}))


if __name__ == "__main__":
    main()
