"""The Received chain (RFC 5321 4.4): hops, delays, clock skew and where mail entered.

Received fields are prepended, so the top one is the last hop. Hops are returned in the order
the message travelled (oldest first). The "entering" hop is the lowest hop, counted from the
top, whose receiving host (``by``) still belongs to the final receiver's organisational domain:
its ``from`` IP is the address SPF is evaluated for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smtpcli.durations import human_duration
from smtpcli.inspection.parse import ParsedMessage, parse_date
from smtpcli.results import Finding, Status

SKEW_TOLERANCE = 60.0  # seconds a later hop may appear to be earlier before we call it skew
LONG_DELAY = 3600.0  # one hour between two hops is worth a note
_CLAUSE = re.compile(r"\b(from|by|via|with|id|for)\s+", re.IGNORECASE)
_IP_IN_BRACKETS = re.compile(r"\[(?:IPv6:)?([0-9a-fA-F:.]+)\]")
_TLS_HINT = re.compile(r"\b(TLSv?1(?:\.\d)?|TLS1_\d|SSLv3|version=TLS|cipher=|using TLS)",
                       re.IGNORECASE)


@dataclass
class Hop:
    """One Received field, parsed as far as it goes."""

    raw: str
    from_host: str | None = None
    from_rdns: str | None = None
    from_ip: str | None = None
    by_host: str | None = None
    with_proto: str | None = None
    id: str | None = None
    for_addr: str | None = None
    time: datetime | None = None
    tls: bool = False
    delay: float | None = None  # seconds since the previous hop

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_host, "from_rdns": self.from_rdns, "from_ip": self.from_ip,
            "by": self.by_host, "with": self.with_proto, "id": self.id, "for": self.for_addr,
            "time": self.time.isoformat() if self.time else None, "tls": self.tls,
            "delay_seconds": None if self.delay is None else round(self.delay, 3),
        }


@dataclass
class ReceivedChain:
    hops: list[Hop] = field(default_factory=list)  # oldest first
    entering: Hop | None = None
    total_seconds: float | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def entering_ip(self) -> str | None:
        return self.entering.from_ip if self.entering else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hops": [h.to_dict() for h in self.hops],
            "entering_hop": self.hops.index(self.entering) if self.entering else None,
            "entering_ip": self.entering_ip,
            "entering_helo": self.entering.from_host if self.entering else None,
            "total_transit_seconds": (None if self.total_seconds is None
                                      else round(self.total_seconds, 3)),
        }


def _strip_comments(text: str) -> tuple[str, list[str]]:
    """Remove (nested) comments; return the text and the comments found."""
    out: list[str] = []
    comments: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth == 1:
                current = []
                continue
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                comments.append("".join(current))
                out.append(" ")
                continue
        if depth:
            current.append(ch)
        else:
            out.append(ch)
    if depth:
        comments.append("".join(current))
    return "".join(out), comments


def parse_received(value: str) -> Hop:
    """Parse one Received value; unknown shapes leave fields None, never raise."""
    hop = Hop(raw=value)
    head, sep, date_part = value.rpartition(";")
    if not sep:
        head, date_part = value, ""
    hop.time = parse_date(date_part) if date_part.strip() else None
    plain, comments = _strip_comments(head)
    # The 'from' clause's comment holds "rdns [ip]" (RFC 5321 4.4 TCP-info).
    matches = list(_CLAUSE.finditer(plain))
    clauses: dict[str, str] = {}
    for n, m in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(plain)
        key = m.group(1).lower()
        clauses.setdefault(key, plain[m.end():end].strip())
    if "from" in clauses:
        hop.from_host = clauses["from"].split()[0] if clauses["from"].split() else None
    if "by" in clauses and clauses["by"].split():
        hop.by_host = clauses["by"].split()[0].rstrip(".").lower()
    if "with" in clauses and clauses["with"].split():
        hop.with_proto = clauses["with"].split()[0]
    if "id" in clauses and clauses["id"].split():
        hop.id = clauses["id"].split()[0]
    if "for" in clauses and clauses["for"].split():
        hop.for_addr = clauses["for"].split()[0].strip("<>")
    from_comment = _from_comment(head)
    for text in [from_comment or ""] + ([hop.from_host or ""]):
        ip = _first_ip(text)
        if ip:
            hop.from_ip = ip
            break
    if from_comment:
        words = [w for w in from_comment.replace("[", " [").split() if not w.startswith("[")]
        rdns = [w for w in words if "." in w and "=" not in w]
        hop.from_rdns = rdns[0].rstrip(".").lower() if rdns else None
    proto = (hop.with_proto or "").upper()
    # RFC 3848: ESMTPS/ESMTPSA/UTF8SMTPS/LMTPS mean TLS was used.
    hop.tls = proto.endswith(("SMTPS", "SMTPSA", "LMTPS", "LMTPSA")) or any(
        _TLS_HINT.search(c) for c in comments
    )
    return hop


def _from_comment(head: str) -> str | None:
    """The comment right after 'from X', where MTAs put '(rdns [ip])'."""
    m = re.search(r"\bfrom\s+\S+\s*\(([^)]*)\)", head, re.IGNORECASE)
    return m.group(1) if m else None


def _first_ip(text: str) -> str | None:
    for candidate in _IP_IN_BRACKETS.findall(text) + re.findall(r"[0-9a-fA-F:.]{7,}", text):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def _org(host: str | None) -> str | None:
    if not host:
        return None
    from smtpcli.inspection.dmarc import organizational_domain

    return organizational_domain(host)


def analyse_received(msg: ParsedMessage, *, now: datetime | None = None) -> ReceivedChain:
    """Parse every Received field into a chain with delays, skew and the entering hop."""
    chain = ReceivedChain()
    values = msg.get_all("received")
    top_first = [parse_received(v) for v in values]
    chain.hops = list(reversed(top_first))
    add = chain.findings.append
    if not chain.hops:
        add(Finding("received.none", Status.INFO, "no Received header fields",
                    detail="The message was not relayed, or the fields were stripped; "
                    "SPF needs --ip then."))
        return chain
    now = now or datetime.now(UTC)
    previous: Hop | None = None
    for n, hop in enumerate(chain.hops, 1):
        if hop.time is None:
            add(Finding("received.no-timestamp", Status.INFO,
                        f"hop {n} has no parsable timestamp", subject=hop.raw[:200],
                        reference="RFC 5321 4.4"))
        elif hop.time > now and (hop.time - now).total_seconds() > SKEW_TOLERANCE:
            add(Finding("received.future-timestamp", Status.WARN,
                        f"hop {n} ({hop.by_host or '?'}) is stamped in the future",
                        subject=hop.time.isoformat(), data={"hop": n}))
        if previous is not None and previous.time and hop.time:
            hop.delay = (hop.time - previous.time).total_seconds()
            if hop.delay < -SKEW_TOLERANCE:
                add(Finding(
                    "received.clock-skew", Status.WARN,
                    f"hop {n} ({hop.by_host or '?'}) is {human_duration(hop.delay)} earlier than "
                    f"hop {n - 1}",
                    detail="One of the two clocks is wrong (or a Received field was forged); "
                    "delays around this hop are meaningless.",
                    data={"hop": n, "delay_seconds": hop.delay},
                ))
            elif hop.delay > LONG_DELAY:
                add(Finding("received.long-delay", Status.INFO,
                            f"hop {n} ({hop.by_host or '?'}) took {human_duration(hop.delay)}",
                            data={"hop": n, "delay_seconds": hop.delay}))
        previous = hop
    times = [h.time for h in chain.hops if h.time]
    if len(times) >= 2:
        chain.total_seconds = (times[-1] - times[0]).total_seconds()
    chain.entering = _entering_hop(top_first)
    if chain.entering is not None and chain.entering.from_ip:
        add(Finding("received.entering-hop", Status.INFO,
                    f"entered {chain.entering.by_host or '?'} from {chain.entering.from_ip}",
                    subject=chain.entering.from_host or chain.entering.from_ip,
                    data={"ip": chain.entering.from_ip, "helo": chain.entering.from_host}))
    else:
        add(Finding("received.no-entering-ip", Status.INFO,
                    "no Received field names the IP the message came from",
                    fix="give it with --ip"))
    return chain


def _entering_hop(top_first: list[Hop]) -> Hop | None:
    """The lowest hop (from the top) whose 'by' is in the final receiver's org domain.

    Hops whose 'from' IP is private or loopback are internal relays, so the walk goes on
    below them as long as they are inside the same organisation.
    """
    # A 'by' that is an IP literal (Gmail's internal hops) says nothing about the organisation.
    named = [h for h in top_first if h.by_host and _first_ip(h.by_host) is None]
    if not named:
        return next((h for h in top_first if h.from_ip), None)
    receiver = _org(named[0].by_host)
    entering: Hop | None = None
    for hop in top_first:
        if hop in named and _org(hop.by_host) != receiver:
            break
        entering = hop
        if hop.from_ip and not _internal(hop.from_ip):
            break
    if entering is not None and entering.from_ip is None:
        return next((h for h in top_first if h.from_ip), entering)
    return entering


def _internal(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    # Explicit ranges: Python's is_private also covers the documentation ranges (RFC 5737),
    # which are public addresses as far as mail routing is concerned.
    return addr.is_loopback or addr.is_link_local or any(addr in net for net in _INTERNAL)


_INTERNAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
)]
