"""A tiny authoritative DNS server on loopback UDP for the demo's ``probe`` step.

``probe`` asks for the reverse name of the address it probes (PTR, then A of the PTR name, for
forward-confirmed reverse DNS). The demo must never ask the system resolver, so ``probe`` runs
with ``--nameserver`` pointing here, and this server answers from a small in-memory zone.
Answers are a few hundred bytes at most, so UDP alone is enough (no truncation, RFC 1035 4.2.1).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

#: 127.0.0.1 <-> the capture server's default host name (ServeConfig.hostname).
ZONE_TEXT = """\
$TTL 300
1.0.0.127.in-addr.arpa. IN PTR {hostname}.
{hostname}.             IN A   127.0.0.1
"""


class DemoDns:
    """Answers A/PTR questions from ``ZONE_TEXT`` on 127.0.0.1, in a daemon thread."""

    def __init__(self, hostname: str, host: str = "127.0.0.1") -> None:
        import dns.rrset

        self.records: dict[tuple[str, str], Any] = {}
        for line in ZONE_TEXT.format(hostname=hostname).splitlines()[1:]:
            name, _cls, rdtype, value = line.split()
            rrset = dns.rrset.from_text(name, 300, "IN", rdtype, value)
            self.records[(name.lower(), rdtype)] = rrset
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="smtpcli-demo-dns", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> DemoDns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query, or None for something that is not a query."""
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype

        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = question.name.to_text().lower()
        rrset = self.records.get((name, dns.rdatatype.to_text(question.rdtype)))
        if rrset is not None:
            response.answer.append(rrset)
        elif not any(key[0] == name for key in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    continue
