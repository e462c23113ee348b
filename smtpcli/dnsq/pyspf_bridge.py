"""Feed pyspf from a DnsClient's per-run cache instead of its own system-resolver lookups.

pyspf calls the module-level ``spf.DNSLookup(name, qtype, strict, timeout)``. We install, once, a
dispatcher that answers through the DnsClient bound to the calling thread (pyspf runs in a worker
thread; the DnsClient's event loop answers), and falls back to pyspf's own function for threads
that bound none. Concurrent checks of many domains each bind their own client; blocking
callers (``inspect``) bind a resolver with ``pyspf_resolver(config)`` instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from smtpcli.dnsq.client import DnsClient, LookupState
from smtpcli.dnsq.resolver import ResolverConfig, make_resolver

if TYPE_CHECKING:
    import dns.resolver

_local = threading.local()
_install_lock = threading.Lock()
_original: Callable[..., Any] | None = None


def _dispatch(name: str, qtype: str, *args: Any, **kwargs: Any) -> list[Any]:
    bound = getattr(_local, "bound", None)
    if bound is None:
        assert _original is not None
        return list(_original(name, qtype, *args, **kwargs))
    import spf

    if isinstance(bound, tuple):
        client, loop = bound
        lookup = asyncio.run_coroutine_threadsafe(client.query(name, qtype), loop).result()
        if lookup.state is LookupState.ERROR:
            raise spf.TempError(f"DNS {name}/{qtype}: {lookup.error}")
        return _as_pyspf(name, qtype, lookup.records)
    return _ask_sync(bound, name, qtype)


def _ask_sync(resolver: dns.resolver.Resolver, name: str, qtype: str) -> list[Any]:
    import dns.exception
    import dns.resolver
    import spf

    try:
        answer = resolver.resolve(name, qtype, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        # Timeouts, SERVFAIL, garbage: temperror (RFC 7208 2.6.6), never "no record".
        raise spf.TempError(f"DNS {name}/{qtype}: {exc or type(exc).__name__}") from exc
    return _as_pyspf(name, qtype, list(answer.rrset or ()))


def _as_pyspf(name: str, qtype: str, records: list[Any]) -> list[Any]:
    """dnspython rdata -> the ((name, type), value) tuples pyspf's DNSLookup returns."""
    out: list[Any] = []
    for rdata in records:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


@contextmanager
def pyspf_resolver(config: ResolverConfig) -> Iterator[None]:
    """In this thread, answer pyspf's DNS through a blocking resolver made from ``config``."""
    install()
    _local.bound = make_resolver(config)
    try:
        yield
    finally:
        _local.bound = None


def install() -> None:
    """Replace ``spf.DNSLookup`` with the dispatcher (idempotent)."""
    global _original
    import spf

    with _install_lock:
        if _original is None:
            _original = spf.DNSLookup
            spf.DNSLookup = _dispatch


def spf_check(
    client: DnsClient, loop: asyncio.AbstractEventLoop, ip: str, sender: str, helo: str,
    timeout: float,
) -> dict[str, Any]:
    """Run pyspf's check in this (worker) thread, answering DNS from `client` on `loop`."""

    install()
    _local.bound = (client, loop)
    try:
        q = query_class()(i=ip, s=sender, h=helo, timeout=timeout, querytime=timeout * 4)
        # A marker instead of pyspf's canned texts, so only an exp= explanation is reported.
        q.set_default_explanation(_NO_EXP)
        result, code, text = q.check()
        result = _OLD_NAMES.get(result, result)
        return {
            "result": result, "code": code,
            # RFC 7208 6.2: the explanation (exp=) only accompanies a fail.
            "explanation": text if result == "fail" and text != _NO_EXP else None,
            "problem": text if result in ("permerror", "temperror") else None,
            "mechanism": q.mechanism, "lookups": q.lookups, "domain": q.d,
        }
    finally:
        _local.bound = None


def query_class() -> type:
    """pyspf's query, with RFC 7208 5.5's rule for ptr validation: "If a DNS error occurs
    while doing an A RR lookup, then that domain name is skipped and the search continues"
    (pyspf 2.0.14 turns it into temperror: the suite's ptr-cname-loop)."""
    global _QUERY
    if _QUERY is None:
        import spf

        class Query(spf.query):  # type: ignore[misc,name-defined]
            def validated_ptrs(self) -> list[str]:
                limit = spf.MAX_PTR if self.strict else spf.MAX_PTR * 4
                names = []
                for name in self.dns_ptr(self.i)[:limit]:
                    try:
                        if self.cidrmatch(self.dns_a(name, self.A), self.cidrmax):
                            names.append(name)
                    except spf.TempError:
                        continue
                return names

        _QUERY = Query
    return _QUERY


_QUERY: type | None = None
_NO_EXP = "\x00no explanation"
#: pyspf's RFC 4408 names for the error results.
_OLD_NAMES = {"unknown": "permerror", "error": "temperror"}


async def evaluate_spf(
    client: DnsClient, ip: str, sender: str, helo: str, timeout: float
) -> dict[str, Any]:
    """Async wrapper: pyspf in a worker thread, fed by `client` on the running loop."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(
        asyncio.to_thread(spf_check, client, loop, ip, sender, helo, timeout), timeout * 4 + 1
    )
