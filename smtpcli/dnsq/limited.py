"""A DnsClient that bounds the questions in flight.

Checking hundreds of domains at once would otherwise send thousands of UDP questions in one
burst; resolvers (and their socket buffers) drop the excess and every dropped question costs a
full timeout. A bound keeps the pipe full without overflowing it.
"""

from __future__ import annotations

import asyncio

from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.dnsq.resolver import ResolverConfig

DEFAULT_MAX_INFLIGHT = 128


class LimitedDnsClient(DnsClient):
    """DnsClient with at most `max_inflight` questions on the wire at once."""

    def __init__(self, config: ResolverConfig | None = None,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        super().__init__(config)
        self.max_inflight = max_inflight
        self._slots: asyncio.Semaphore | None = None

    async def _ask(self, name: str, rdtype: str) -> Lookup:
        if self._slots is None:  # created inside the running loop
            self._slots = asyncio.Semaphore(self.max_inflight)
        async with self._slots:
            return await super()._ask(name, rdtype)
