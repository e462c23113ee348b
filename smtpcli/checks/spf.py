"""SPF (RFC 7208): one record, syntax, the lookup tree with the 10-lookup and 2-void limits
counted through includes and redirects, `ptr`, `all` strength, loops, length, type 99; and
"would this sender pass?" through pyspf fed from the per-run DNS cache."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from smtpcli.checks.common import CheckOptions, FamilyResult, txt_records
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Status

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
MAX_VOID = 2  # RFC 7208 4.6.4
MAX_MX_NAMES = 10  # RFC 7208 4.6.4: mx and ptr evaluation limit
#: RFC 7208 3.4: keep the record small enough for a 512-byte UDP answer.
MAX_RECORD_LEN = 450
#: Stop walking a runaway tree (the limit is already long exceeded by then).
WALK_BUDGET = 40
COUNTED = {"include", "a", "mx", "ptr", "exists", "redirect"}
MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_MECH_RE = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?::(.*?))?(/\d+)?(//\d+)?$", re.IGNORECASE)
_MOD_RE = re.compile(r"^([a-z][a-z0-9_\-.]*)=(.*)$", re.IGNORECASE)


@dataclass
class Term:
    text: str
    qualifier: str = "+"
    name: str = ""
    arg: str | None = None
    modifier: bool = False
    error: str | None = None


def parse_spf(record: str, domain: str = "record.invalid") -> list[Term]:
    """Terms of a record after ``v=spf1`` (RFC 7208 4.6.1: separated by spaces only); a
    malformed term carries `error`, as judged by the section 12 lint (spf_syntax)."""
    from smtpcli.checks.spf_syntax import check_terms

    problems = {p.term: p.problem for p in check_terms(record, domain)}
    terms = []
    for token in [t for t in record.split(" ")[1:] if t]:
        error = problems.get(token)
        mod = _MOD_RE.match(token)
        if mod and not token.lower().startswith(("ip4:", "ip6:")):
            terms.append(Term(token, name=mod.group(1).lower(), arg=mod.group(2),
                              modifier=True, error=error))
            continue
        m = _MECH_RE.match(token)
        if not m:  # outside the mechanism shapes this walker counts
            terms.append(Term(token, error=error or "not a valid term"))
            continue
        terms.append(Term(token, m.group(1) or "+", m.group(2).lower(), m.group(3),
                          error=error))
    return terms


@dataclass
class SpfNode:
    """One record in the tree: its own counted terms plus its children's."""

    domain: str
    via: str
    record: str | None = None
    lookups: int = 0
    children: list[SpfNode] = field(default_factory=list)
    void: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def total(self) -> int:
        return self.lookups + sum(c.total for c in self.children)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"domain": self.domain, "via": self.via, "record": self.record,
                               "lookups": self.lookups, "total": self.total}
        if self.void:
            out["void"] = self.void
        if self.note:
            out["note"] = self.note
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


def _has_macro(text: str) -> bool:
    return "%" in text


def _target(term: Term, domain: str) -> str:
    arg = term.arg
    return (arg or domain).rstrip(".").lower()


class _Walker:
    def __init__(self, dns: DnsClient, result: FamilyResult) -> None:
        self.dns = dns
        self.result = result
        self.budget = WALK_BUDGET
        self.void_terms: list[str] = []
        self.loops: list[str] = []

    async def _void(self, term: Term, domain: str, node: SpfNode) -> None:
        """Look up an a/mx/exists target to find void lookups (RFC 7208 4.6.4)."""
        target = _target(term, domain)
        if _has_macro(target) or target.endswith(".invalid"):
            return  # RFC 6761 6.4: .invalid never resolves (a --record lint without a domain)
        if term.name == "mx":
            mx = await self.dns.query(target, "MX")
            lookups = [mx]
            if mx.ok and len(mx.records) > MAX_MX_NAMES:
                self.result.add("spf.too-many-lookups", Status.FAIL,
                                f"{term.text} in {domain}: {len(mx.records)} MX names, over the "
                                f"{MAX_MX_NAMES} allowed per mx term", reference="RFC 7208 4.6.4")
        elif term.name == "a":
            lookups = list(await asyncio.gather(self.dns.query(target, "A"),
                                                self.dns.query(target, "AAAA")))
        else:  # exists
            lookups = [await self.dns.query(target, "A")]
        for lk in lookups:
            if lk.failed:
                self.result.failed_lookup(lk, f"SPF term {term.text} in {domain}")
                return
        if all(not lk.ok for lk in lookups):
            node.void.append(term.text)
            self.void_terms.append(f"{term.text} (in {domain})")

    async def walk(self, domain: str, via: str, stack: tuple[str, ...],
                   record: str | None = None) -> SpfNode:
        node = SpfNode(domain, via)
        if record is None:
            lookup = await self.dns.query(domain, "TXT")
            if lookup.failed:
                self.result.failed_lookup(lookup, f"SPF record ({via})")
                node.note = "lookup failed"
                return node
            records = txt_records(lookup, "v=spf1")
            if not records:
                node.note = "no SPF record" if lookup.ok or lookup.absent else None
                if via in ("include", "redirect"):
                    self.result.add(
                        f"spf.{via}-missing", Status.FAIL,
                        f"{via} target {domain} has no SPF record (a permanent error)",
                        subject=domain, reference="RFC 7208 5.2" if via == "include"
                        else "RFC 7208 6.1")
                    if lookup.absent:
                        node.void.append(f"{via}:{domain}")
                        self.void_terms.append(f"{via}:{domain}")
                return node
            if len(records) > 1:
                self.result.add("spf.multiple", Status.FAIL,
                                f"{domain} publishes {len(records)} SPF records (permerror)",
                                subject=domain, reference="RFC 7208 4.5",
                                data={"records": records})
            record = records[0]
        node.record = record
        self._lint_record(domain, record)
        # A malformed term (t.error) is a permerror, not a lookup, and may not even be a name.
        terms = parse_spf(record, domain)
        has_all = any(t.name == "all" and not t.modifier for t in terms)
        tasks = []
        for term in terms:
            if term.error:
                continue
            if term.name in COUNTED and (
                not term.modifier or (term.name == "redirect" and not has_all)
            ):
                node.lookups += 1
            if term.modifier:
                if term.name == "redirect" and not has_all:  # RFC 7208 6.1: ignored with all
                    tasks.append(self._child(term, domain, "redirect", stack))
                continue
            if term.name == "include":
                tasks.append(self._child(term, domain, "include", stack))
            elif term.name in ("a", "mx", "exists"):
                tasks.append(self._void(term, domain, node))
        self.budget -= node.lookups
        results = await asyncio.gather(*tasks)
        node.children = [r for r in results if isinstance(r, SpfNode)]
        return node

    async def _child(self, term: Term, domain: str, via: str,
                     stack: tuple[str, ...]) -> SpfNode | None:
        target = _target(term, domain)
        if _has_macro(target):
            return SpfNode(target, via, note="macro: depends on the sender, not followed")
        if target in stack or target == domain:
            self.loops.append(" -> ".join((*stack, domain, target)))
            return SpfNode(target, via, note="loop")
        if self.budget <= 0:
            return SpfNode(target, via, note="not followed: lookup budget exhausted")
        return await self.walk(target, via, (*stack, domain))

    def _lint_record(self, domain: str, record: str) -> None:
        """Findings for the record's syntax (RFC 7208 12), size and ptr."""
        from smtpcli.checks.spf_syntax import check_terms, fixed_record

        problems = check_terms(record, domain)
        fixed = fixed_record(record, problems)
        for problem in problems:
            self.result.add(
                "spf.syntax", Status.FAIL,
                f"SPF record of {domain}: {problem.term!r}: {problem.problem} (permerror)",
                subject=domain, reference=problem.reference, fix=fixed,
                data={"record": record, "term": problem.term, "problem": problem.problem,
                      "fixed_term": problem.fixed})
        if any(t.name == "ptr" and not t.modifier for t in parse_spf(record)):
            self.result.add("spf.ptr", Status.WARN,
                            f"{domain} uses the ptr mechanism (\"SHOULD NOT be used\")",
                            subject=domain, reference="RFC 7208 5.5",
                            fix="replace ptr with ip4:/ip6: or a: terms")
        if len(record) > MAX_RECORD_LEN:
            self.result.add("spf.too-long", Status.WARN,
                            f"SPF record of {domain} is {len(record)} characters; answers over "
                            "512 bytes need TCP and some receivers fail them",
                            subject=domain, reference="RFC 7208 3.4",
                            fix="move ranges into an include:")


def _render_tree(node: SpfNode, indent: str = "") -> list[str]:
    label = f"{node.via} {node.domain}" if node.via != "root" else node.domain
    line = f"{indent}{label}: {node.lookups} lookup(s), {node.total} with children"
    if node.note:
        line += f" [{node.note}]"
    lines = [line]
    for child in node.children:
        lines.extend(_render_tree(child, indent + "  "))
    return lines


def effective_all(node: SpfNode) -> tuple[str | None, str]:
    """The `all` qualifier that ends evaluation, following redirects; and where it is."""
    if node.record is None:
        return None, node.domain
    for term in parse_spf(node.record):
        if term.name == "all" and not term.modifier and not term.error:
            return term.qualifier, node.domain
    for child in node.children:
        if child.via == "redirect":
            return effective_all(child)
    return None, node.domain


def valid_domain(name: str) -> bool:
    """A name check_host() can look up (RFC 7208 4.3: labels of 1-63 octets, ASCII)."""
    labels = name.rstrip(".").split(".")
    return (name.isascii() and len(name) <= 253 and len(labels) > 1
            and all(0 < len(label) < 64 for label in labels))


async def check_spf(
    dns: DnsClient, domain: str, opts: CheckOptions, record: str | None = None
) -> FamilyResult:
    """Check the domain's SPF record, or lint `record` as if published at `domain`; with
    ``opts.ip``, also evaluate each identity (whatever the domain publishes)."""
    from smtpcli.checks.spf_eval import evaluate_identities, report_evaluations

    result = FamilyResult("spf")
    evaluations = (asyncio.ensure_future(evaluate_identities(dns, domain, opts))
                   if opts.ip else None)
    try:
        if record is not None or valid_domain(domain):
            await _check_record(dns, domain, opts, record, result)
        else:
            result.add("spf.not-a-domain", Status.INFO,
                       f"{domain!r} is not a domain name SPF can look up; nothing to lint",
                       reference="RFC 7208 4.3")
    except BaseException:
        if evaluations is not None:
            evaluations.cancel()
        raise
    if evaluations is not None:
        report_evaluations(await evaluations, result)
    return result


async def _check_record(dns: DnsClient, domain: str, opts: CheckOptions, record: str | None,
                        result: FamilyResult) -> None:
    """The published (or given) record: syntax, lookup tree, limits, all, type 99."""
    walker = _Walker(dns, result)
    type99: Lookup | None = None
    if record is None:
        lookup, type99 = await asyncio.gather(dns.query(domain, "TXT"), dns.query(domain, "SPF"))
        if lookup.failed:
            result.failed_lookup(lookup, "SPF record")
            return
        records = txt_records(lookup, "v=spf1")
        if not records:
            result.add("spf.missing", Status.FAIL, f"{domain} publishes no SPF record",
                       reference="RFC 7208 4.5",
                       fix=f'{domain}. IN TXT "v=spf1 mx -all"')
            return
        result.facts["records"] = records
    else:
        records = [record]
        result.facts["records"] = records
        if not record.lower().startswith("v=spf1"):
            result.add("spf.syntax", Status.FAIL, "the record does not start with v=spf1",
                       reference="RFC 7208 4.5")
            return
    tree = await walker.walk(domain, "root", (), record=records[0])
    if record is None and len(records) > 1:
        result.add("spf.multiple", Status.FAIL,
                   f"{domain} publishes {len(records)} SPF records (permerror)",
                   reference="RFC 7208 4.5", data={"records": records},
                   fix="merge them into one record")
    result.facts["tree"] = tree.to_dict()
    result.facts["tree_text"] = _render_tree(tree)
    result.facts["lookups"] = tree.total
    total = tree.total
    if total > MAX_LOOKUPS:
        heavy = sorted(tree.children, key=lambda c: -c.total)[:3]
        result.add("spf.too-many-lookups", Status.FAIL,
                   f"{total} DNS-querying terms, over the limit of {MAX_LOOKUPS} (permerror)",
                   reference="RFC 7208 4.6.4",
                   detail="heaviest branches: " + ", ".join(
                       f"{c.via}:{c.domain} ({c.total})" for c in heavy),
                   fix="replace includes by ip4:/ip6: ranges or drop unused senders",
                   data={"lookups": total})
    else:
        result.add("spf.lookups", Status.OK, f"{total} of {MAX_LOOKUPS} DNS lookups used",
                   data={"lookups": total})
    if len(walker.void_terms) > MAX_VOID:
        result.add("spf.void-lookups", Status.FAIL,
                   f"{len(walker.void_terms)} void lookups, over the limit of {MAX_VOID}: "
                   + ", ".join(walker.void_terms), reference="RFC 7208 4.6.4",
                   data={"terms": walker.void_terms})
    elif walker.void_terms:
        result.add("spf.void-lookups", Status.WARN,
                   "terms that resolve to nothing: " + ", ".join(walker.void_terms),
                   reference="RFC 7208 4.6.4", data={"terms": walker.void_terms})
    for loop in walker.loops:
        result.add("spf.loop", Status.FAIL, f"include/redirect loop: {loop}",
                   reference="RFC 7208 4.6.4")
    qualifier, where = effective_all(tree)
    fixed = re.sub(r"(^|\s)[+?]?all\b", r"\1-all", records[0]) if qualifier else None
    if qualifier == "+":
        result.add("spf.all-pass", Status.FAIL,
                   f"+all in {where}: every host on the internet passes SPF",
                   reference="RFC 7208 5.1", fix=fixed)
    elif qualifier == "?":
        result.add("spf.all-neutral", Status.WARN, f"?all in {where}: SPF asserts nothing",
                   reference="RFC 7208 5.1", fix=fixed)
    elif qualifier is None and not any(f.id.endswith("-missing") for f in result.findings):
        result.add("spf.no-all", Status.WARN,
                   "no all term and no redirect: unmatched senders get neutral",
                   reference="RFC 7208 4.7", fix=records[0] + " -all")
    else:
        result.facts["all"] = qualifier
    if type99 is not None:
        if type99.ok:
            result.add("spf.type99", Status.WARN,
                       "a type 99 (SPF) record is published; RFC 7208 removed that type",
                       reference="RFC 7208 3.1", fix="delete the SPF-type record, keep the TXT")
        elif type99.failed:
            # Some servers fail type 99 queries; report it but it changes nothing for SPF.
            result.failed_lookup(type99, "type 99 (SPF) record check")
