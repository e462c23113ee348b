"""`smtpcli serve` as the receiver: messages/s and peak memory at 10,000 messages.

    python benchmarks/serve.py [--messages 10000] [--size 1024] [--sessions 20]

Senders: Postfix's smtp-source (new connection per message, and -d reuse) and `smtpcli bench`.
Receivers: `smtpcli serve --count N` with memory storage, and with a Maildir (fsync on and off).
Peak memory is the serve process's max RSS from wait4(). Loopback only; every run is bounded by
--count and a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from bench import SMTPCLI, TIMEOUT, free_port, wait_port  # noqa: E402


def run(label: str, n: int, size: int, sessions: int, sender: str, store: list[str]) -> dict[str, Any]:
    port = free_port()
    serve = subprocess.Popen(
        [*SMTPCLI, "serve", "--listen", f"127.0.0.1:{port}", "--count", str(n), "--expect",
         str(n), "--exit-after", str(TIMEOUT), "--json", *store],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    wait_port(port)
    t = time.perf_counter()
    if sender == "smtp-source":
        send = ["smtp-source", "-l", str(size), "-m", str(n), "-s", str(sessions), f"127.0.0.1:{port}"]
    elif sender == "smtp-source -d":
        send = ["smtp-source", "-d", "-l", str(size), "-m", str(n), "-s", str(sessions),
                f"127.0.0.1:{port}"]
    else:
        send = [*SMTPCLI, "bench", f"127.0.0.1:{port}", "--tls", "none", "-n", str(n), "-c",
                str(sessions), "--size", str(size), "--json"]
    subprocess.run(send, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT)
    _, status, rusage = os.wait4(serve.pid, 0)
    wall = time.perf_counter() - t
    serve.returncode = os.waitstatus_to_exitcode(status)
    return {"receiver": label, "sender": sender, "messages": n, "wall_s": round(wall, 3),
            "messages_per_s": round(n / wall, 1), "peak_rss_mb": round(rusage.ru_maxrss / 1024, 1),
            "expect_ok": serve.returncode == 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sessions", type=int, default=20)
    a = ap.parse_args()
    n = max(100, min(a.messages, 100_000))
    if shutil.which("smtp-source") is None:
        raise SystemExit("smtp-source not found (Debian package postfix)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sender in ("smtp-source", "smtp-source -d", "smtpcli bench"):
            rows.append(run("serve (memory)", n, a.size, a.sessions, sender, []))
        rows.append(run("serve --maildir --no-fsync", n, a.size, a.sessions, "smtpcli bench",
                        ["--maildir", os.path.join(tmp, "md1"), "--no-fsync"]))
        rows.append(run("serve --maildir (fsync)", n, a.size, a.sessions, "smtpcli bench",
                        ["--maildir", os.path.join(tmp, "md2")]))
    print(f"{n} messages of {a.size} bytes, {a.sessions} connections, loopback\n")
    print(f"{'receiver':<28} {'sender':<16} {'wall s':>8} {'msg/s':>9} {'peak RSS MB':>12} expect")
    for r in rows:
        print(f"{r['receiver']:<28} {r['sender']:<16} {r['wall_s']:>8} {r['messages_per_s']:>9,.1f}"
              f" {r['peak_rss_mb']:>12} {'ok' if r['expect_ok'] else 'MISSED'}")
    print(json.dumps({"benchmark": "serve", "rows": rows}))


if __name__ == "__main__":
    main()
