"""A DnsClient that answers names inside a zone file from the file (``--zone-file``).

Names outside the zone go to the configured resolver, or, offline, end as failed lookups
("not in the zone file"), never as "absent".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from smtpcli.dnsq.client import Lookup, LookupState, txt_string
from smtpcli.dnsq.limited import LimitedDnsClient
from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.errors import UsageError

if TYPE_CHECKING:
    import dns.zone


def load_zone_file(path: str | Path, origin: str | None = None) -> dns.zone.Zone:
    """Parse a zone file; origin from `origin`, its $ORIGIN, or the file name (NAME.zone)."""
    import dns.exception
    import dns.zone

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read zone file {path}: {exc.strerror}") from None
    if origin is None and "$ORIGIN" not in text.upper():
        origin = p.name.removesuffix(".zone")
    try:
        return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    except (dns.exception.DNSException, ValueError) as exc:
        raise UsageError(f"zone file {path} does not parse: {exc}") from None


class ZoneDnsClient(LimitedDnsClient):
    """Answers from a zone for names inside it; elsewhere asks DNS unless `offline`."""

    def __init__(self, zone: dns.zone.Zone, config: ResolverConfig | None = None,
                 offline: bool = False) -> None:
        super().__init__(config)
        self.zone = zone
        self.offline = offline

    @property
    def origin(self) -> str:
        return str(self.zone.origin).rstrip(".").lower()

    def dnssec_unknown(self, name: str) -> str | None:
        import dns.name

        assert self.zone.origin is not None
        if dns.name.from_text(name).is_subdomain(self.zone.origin):
            return "its answers come from the zone file, which no resolver validated"
        return None

    async def _ask(self, name: str, rdtype: str) -> Lookup:
        import dns.name

        qname = dns.name.from_text(name)
        assert self.zone.origin is not None
        if not qname.is_subdomain(self.zone.origin):
            if self.offline:
                return Lookup(name, rdtype, LookupState.ERROR,
                              error="not in the zone file (--offline)")
            return await super()._ask(name, rdtype)
        found = self._from_zone(qname, rdtype)
        if isinstance(found, Lookup):
            return found
        # A CNAME from the zone to a name outside it (a DMARC or DKIM record hosted by a
        # provider, say): follow it over DNS like a resolver would (RFC 1034 3.6.2).
        if self.offline:
            return Lookup(name, rdtype, LookupState.ERROR,
                          error=f"CNAME to {found} outside the zone file (--offline)")
        outside = await super()._ask(found.to_text(), rdtype)
        outside.name = name
        return outside

    def _from_zone(self, qname: dns.name.Name, rdtype: str) -> Lookup | dns.name.Name:
        """The zone's answer, or the out-of-zone name a CNAME chain leads to."""
        import dns.rdatatype

        self.questions += 1
        name = qname.to_text()
        want = dns.rdatatype.from_text(rdtype)
        for _ in range(8):  # follow CNAMEs inside the zone
            node = self.zone.get_node(qname)
            if node is None:
                below = any(n.is_subdomain(qname) for n in self.zone.nodes)
                return Lookup(name, rdtype,
                              LookupState.NODATA if below else LookupState.NXDOMAIN)
            rds = node.get_rdataset(self.zone.rdclass, want)
            if rds is not None:
                records = list(rds)
                texts = [txt_string(r) if rdtype in ("TXT", "SPF") else r.to_text()
                         for r in records]
                return Lookup(name, rdtype, LookupState.ANSWER, records=records, texts=texts,
                              canonical_name=qname.to_text().rstrip("."), ttl=rds.ttl)
            cname = node.get_rdataset(self.zone.rdclass, dns.rdatatype.CNAME)
            if cname is None:
                return Lookup(name, rdtype, LookupState.NODATA)
            qname = cname[0].target
            assert self.zone.origin is not None
            if not qname.is_subdomain(self.zone.origin):
                return qname
        return Lookup(name, rdtype, LookupState.ERROR, error="CNAME chain too long")
