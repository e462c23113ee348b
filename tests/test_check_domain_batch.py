"""check-domain over many domains (issue 17): bounded DNS cache, streamed results, --resume
after an interrupted run. Real DNS fixture on loopback, real subprocesses."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

from smtpcli.dnsq.client import DnsClient
from smtpcli.dnsq.resolver import ResolverConfig

SMTPCLI = [sys.executable, "-m", "smtpcli"]
COUNT = 24


def batch_zone(count: int) -> str:
    lines = ["$TTL 300", "mx1 IN A 127.0.0.10", '_spf IN TXT "v=spf1 ip4:192.0.2.0/24 -all"']
    for i in range(count):
        lines += [f"d{i} IN MX 10 mx1.batch.test.",
                  f'd{i} IN TXT "v=spf1 mx include:_spf.batch.test -all"',
                  f'_dmarc.d{i} IN TXT "v=DMARC1; p=reject; rua=mailto:d@d{i}.batch.test"']
    return "\n".join(lines) + "\n"


def zones(count: int) -> dict[str, str]:
    """The domains and the reverse zone of their MX host (PTR checks need an answer)."""
    return {"batch.test.": batch_zone(count),
            "0.0.127.in-addr.arpa.": "$TTL 300\n10 IN PTR mx1.batch.test.\n"}


def test_dns_cache_keeps_only_the_most_recent_answers(dns_server) -> None:
    server = dns_server(zones={"batch.test.": batch_zone(20)})
    client = DnsClient(ResolverConfig.from_options([server.nameserver], 2.0, 0), cache_size=8)

    async def ask() -> None:
        for i in range(20):
            assert (await client.query(f"d{i}.batch.test", "MX")).ok
        assert len(client._cache) == 8 and client.questions == 20
        await client.query("d19.batch.test", "MX")  # still cached: no new question
        assert client.questions == 20
        await client.query("d0.batch.test", "MX")  # evicted long ago: asked again
        assert client.questions == 21 and len(client._cache) == 8

    asyncio.run(ask())


def _lines(path) -> list[str]:
    return path.read_bytes().decode().splitlines()


def test_resume_goes_on_after_an_interrupted_run(dns_server, tmp_path) -> None:
    # 50 ms per answer, two domains at a time: the first run is still busy when interrupted.
    server = dns_server(zones=zones(COUNT), delay=0.05)
    names = [f"d{i}.batch.test" for i in range(COUNT)]
    listing = tmp_path / "domains.txt"
    listing.write_text("\n".join(names) + "\n")
    out = tmp_path / "scan.jsonl"
    cmd = [*SMTPCLI, "check-domain", "--from-file", str(listing), "--json", "--resume", str(out),
           "--nameserver", server.nameserver, "--timeout", "2", "--dns-retries", "0",
           "--only", "mx", "--only", "spf", "--only", "dmarc", "--concurrency", "2"]
    with out.open("ab") as sink:
        first = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE)
        end = time.monotonic() + 30
        while len(_lines(out)) < 4 and time.monotonic() < end and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 130, err
    done_first = [json.loads(line)["target"] for line in _lines(out)]
    assert 4 <= len(done_first) < COUNT
    # The interruption cut a line in half (as a kill during a write would).
    with out.open("ab") as fh:
        fh.write(b'{"schema": 1, "command": "check-domain", "target": "d23.batch.test", "sta')
    server.queries.clear()
    with out.open("ab") as sink:
        second = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"{len(done_first)} of {COUNT} domains already in" in second.stderr
    assert "removed an unfinished last line" in second.stderr
    docs = [json.loads(line) for line in _lines(out)]  # every line whole JSON
    targets = [d["target"] for d in docs]
    assert sorted(targets) == sorted(names)  # each domain exactly once
    def about(qname: str, domain: str) -> bool:
        name = qname.rstrip(".")
        return name == domain or name.endswith("." + domain)

    # The resumed run never asked about a finished domain (nor its _dmarc name).
    assert not [q for q in server.queries for d in done_first if about(q.qname, d)]
    # Nothing left to do: a third run checks nothing and keeps the scan's exit code.
    with out.open("ab") as sink:
        third = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60)
    assert third.returncode == 0 and f"{COUNT} of {COUNT} domains already in" in third.stderr
    assert len(_lines(out)) == COUNT


def test_resume_needs_json(tmp_path) -> None:
    out = subprocess.run([*SMTPCLI, "check-domain", "a.test", "b.test", "--resume",
                          str(tmp_path / "x.jsonl"), "--nameserver", "127.0.0.1:9"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--json" in out.stderr


def test_resume_of_one_finished_domain_checks_nothing(dns_server, tmp_path) -> None:
    server = dns_server(zones=zones(2))
    out = tmp_path / "one.jsonl"
    cmd = [*SMTPCLI, "check-domain", "d0.batch.test", "--json", "--resume", str(out),
           "--nameserver", server.nameserver, "--timeout", "2", "--dns-retries", "0",
           "--only", "mx"]
    with out.open("ab") as sink:
        first = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    asked = len(server.queries)
    with out.open("ab") as sink:
        again = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60)
    assert again.returncode == 0 and "1 of 1 domains already in" in again.stderr
    assert len(server.queries) == asked and len(_lines(out)) == 1


def test_a_long_list_is_read_without_a_second_copy(tmp_path) -> None:
    # issue 17: the names of a scan stay in memory for the whole run (to skip duplicates);
    # reading them all and normalising after held the raw lines too, about twice the names.
    import tracemalloc

    from smtpcli.cli.check_domain import _read_domains
    from smtpcli.cli.domain_input import normalize_names

    listing = tmp_path / "names.txt"
    listing.write_text("# a scan\n" + "".join(f"D{i}.Batch.Test.\n\n" for i in range(20000)))
    normalize_names(_read_domains((), str(listing)))  # imports and caches out of the count
    tracemalloc.start()
    try:
        names, refused = normalize_names(_read_domains((), str(listing)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused == 0 and names[:2] == ["d0.batch.test", "d1.batch.test"]
    assert len(names) == 20000
    kept = sys.getsizeof(names) + sum(sys.getsizeof(n) for n in names)
    assert peak < 1.6 * kept, (peak, kept)
