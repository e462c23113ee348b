"""Concurrent DNS lookups with one cache per run; failures are results, never 'absent'.

Every lookup ends in a ``Lookup`` whose ``state`` tells apart an answer, a name that does not
exist (NXDOMAIN), a name without records of that type (no data) and a failed lookup (timeout,
SERVFAIL, REFUSED, garbage), because "lookup failed" must never be reported as "absent".
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smtpcli.dnsq.resolver import ResolverConfig, make_async_resolver

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rrset


class LookupState(enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    ERROR = "error"


@dataclass
class Lookup:
    """The outcome of one question."""

    name: str
    rdtype: str
    state: LookupState
    records: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    error: str | None = None
    authenticated: bool = False
    canonical_name: str | None = None
    ttl: int | None = None

    @property
    def ok(self) -> bool:
        return self.state is LookupState.ANSWER

    @property
    def absent(self) -> bool:
        """True only when the server said so (NXDOMAIN or no data), never on failure."""
        return self.state in (LookupState.NXDOMAIN, LookupState.NODATA)

    @property
    def failed(self) -> bool:
        return self.state is LookupState.ERROR

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "type": self.rdtype, "state": self.state.value,
            "records": self.texts,
        }
        if self.error:
            out["error"] = self.error
        if self.authenticated:
            out["authenticated"] = True
        return out


def txt_string(rdata: Any) -> str:
    """Join a TXT record's character-strings (RFC 7208 3.3) into one text."""
    return b"".join(rdata.strings).decode("utf-8", "replace")


def _describe_failure(exc: BaseException) -> str:
    import dns.exception
    import dns.resolver

    if isinstance(exc, dns.resolver.LifetimeTimeout):
        return "timed out"
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        errors = exc.kwargs.get("errors") or []
        reasons = sorted({str(e[3]) for e in errors if len(e) > 3})
        if reasons:
            return "no server answered usefully: " + "; ".join(reasons)[:300]
        return "SERVFAIL or REFUSED from every nameserver"
    if isinstance(exc, dns.resolver.YXDOMAIN):
        return "name too long after DNAME substitution"
    if isinstance(exc, (ValueError, dns.exception.SyntaxError)):
        return f"invalid name: {exc}"
    text = str(exc) or type(exc).__name__
    return text[:300]


def lookup_from_error(name: str, rdtype: str, exc: Exception) -> Lookup:
    """The Lookup for a question the resolver raised on: NXDOMAIN says the name does not exist;
    anything else (timeout, SERVFAIL, REFUSED, garbage, a malformed name) is a failed lookup."""
    import dns.name
    import dns.resolver

    if isinstance(exc, dns.resolver.NXDOMAIN):
        return Lookup(name, rdtype, LookupState.NXDOMAIN)
    if isinstance(exc, (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong)):
        return Lookup(name, rdtype, LookupState.ERROR, error=f"invalid name: {exc}")
    return Lookup(name, rdtype, LookupState.ERROR, error=_describe_failure(exc))


#: Answers kept per run. A batch of many domains would otherwise keep every answer of every
#: domain (about 40 KiB each); the most recently used ones are what other domains share (the
#: big providers' MX hosts and SPF includes), and one domain's checks need a few dozen.
DEFAULT_CACHE_SIZE = 4096


class DnsClient:
    """Asks DNS questions concurrently; each (name, type) is asked once while it is among the
    ``cache_size`` most recently used (in a run of one domain: once per run)."""

    def __init__(self, config: ResolverConfig | None = None,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.config = config or ResolverConfig()
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._cache: OrderedDict[tuple[str, str], asyncio.Future[Lookup]] = OrderedDict()
        self.cache_size = cache_size
        self.questions = 0

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            self._resolver = make_async_resolver(self.config)
        return self._resolver

    def cached(self, name: str, rdtype: str) -> Lookup | None:
        """A finished lookup from this run's cache, if any."""
        fut = self._cache.get((_norm(name), rdtype.upper()))
        if fut is not None and fut.done() and not fut.cancelled():
            return fut.result()
        return None

    async def query(self, name: str, rdtype: str) -> Lookup:
        """Look up (name, type) once; concurrent callers share the same answer."""
        key = (_norm(name), rdtype.upper())
        cache = self._cache
        fut = cache.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            cache[key] = fut
            if len(cache) > self.cache_size:
                cache.popitem(last=False)  # least recently used; its waiters keep their future
            try:
                fut.set_result(await self._ask(*key))
            except BaseException as exc:  # cancellation: let waiters see it too
                if cache.get(key) is fut:
                    del cache[key]
                fut.set_exception(exc)
                raise
        else:
            cache.move_to_end(key)
        return await asyncio.shield(fut)

    async def query_many(self, questions: list[tuple[str, str]]) -> list[Lookup]:
        return list(await asyncio.gather(*(self.query(n, t) for n, t in questions)))

    def dnssec_unknown(self, name: str) -> str | None:
        """Why the AD bit of answers for ``name`` says nothing (None: it is meaningful)."""
        return None

    async def _ask(self, name: str, rdtype: str) -> Lookup:
        import dns.flags

        self.questions += 1
        try:
            answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except Exception as exc:  # dnspython's failures are outcomes: reported, never "absent"
            return lookup_from_error(name, rdtype, exc)
        ad = bool(answer.response.flags & dns.flags.AD)
        if answer.rrset is None:
            return Lookup(name, rdtype, LookupState.NODATA, authenticated=ad)
        records = list(answer.rrset)
        texts = [txt_string(r) if rdtype in ("TXT", "SPF") else r.to_text() for r in records]
        return Lookup(
            name, rdtype, LookupState.ANSWER, records=records, texts=texts, authenticated=ad,
            canonical_name=str(answer.canonical_name).rstrip(".") or ".",
            ttl=answer.rrset.ttl,
        )


def _norm(name: str) -> str:
    return name.rstrip(".").lower() + "."


class DomainView(DnsClient):
    """One domain's view of a shared client: the same cache and answers, its own count.

    ``questions`` counts the distinct questions this domain needed, so a per-domain header in
    a many-domain run shows its own figure, not the run's total.
    """

    def __init__(self, shared: DnsClient) -> None:
        super().__init__(shared.config)
        self.shared = shared
        self._asked: set[tuple[str, str]] = set()

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        return self.shared.resolver

    def cached(self, name: str, rdtype: str) -> Lookup | None:
        return self.shared.cached(name, rdtype)

    async def query(self, name: str, rdtype: str) -> Lookup:
        self._asked.add((_norm(name), rdtype.upper()))
        self.questions = len(self._asked)
        return await self.shared.query(name, rdtype)

    def dnssec_unknown(self, name: str) -> str | None:
        return self.shared.dnssec_unknown(name)
