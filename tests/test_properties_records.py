"""Property tests (hypothesis) for the DNS record parsers of check-domain: SPF (syntax and the
lookup-count tree over a loopback DNS server), DMARC, DKIM key, MTA-STS policy, TLS-RPT, BIMI."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smtpcli.checks.bimi import check_bimi, parse_bimi
from smtpcli.checks.common import CheckOptions, parse_tags
from smtpcli.checks.dkim import evaluate_dkim_key_record, parse_dkim_key_record
from smtpcli.checks.dmarc import check_dmarc, parse_dmarc
from smtpcli.checks.mtasts import (
    MAX_AGE_LIMIT,
    PolicyFetchError,
    _dechunk,
    mx_matches,
    parse_policy,
)
from smtpcli.checks.spf import COUNTED, check_spf, parse_spf
from smtpcli.checks.tlsrpt import check_tlsrpt, parse_tlsrpt
from smtpcli.dnsq.client import DnsClient
from smtpcli.dnsq.resolver import ResolverConfig
from tests.servers.dns_fixture import DnsServer, start_dns_server

FAST = settings(deadline=None)
# Examples that ask the loopback DNS server: fewer, they cost a few round trips each.
DNS = settings(max_examples=80, deadline=None)

ZONE = """\
$ORIGIN spf.test.
inc1   TXT "v=spf1 a mx -all"
inc2   TXT "v=spf1 include:inc1.spf.test ip4:192.0.2.0/24 ~all"
loop   TXT "v=spf1 include:loop.spf.test -all"
nospf  TXT "hello"
host   A   192.0.2.1
mx     MX  10 host.spf.test.
a      A   192.0.2.2
"""
#: Totals of the includable names (their own counted terms plus their children's).
INCLUDE_TOTALS = {"inc1.spf.test": 2, "inc2.spf.test": 3, "loop.spf.test": 1,
                  "nospf.spf.test": 0, "gone.spf.test": 0}


@pytest.fixture(scope="module")
def spf_dns() -> Iterator[DnsServer]:
    server = start_dns_server(zones={"spf.test.": ZONE})
    server.behaviour["broken.spf.test"] = "servfail"
    yield server
    server.stop()


def run_check(server: DnsServer, check: Any, domain: str, record: str) -> Any:
    async def go() -> Any:
        client = DnsClient(ResolverConfig.from_options([server.nameserver], 1.0, 0))
        return await check(client, domain, CheckOptions(timeout=1.0), record=record)

    result = asyncio.run(go())
    json.dumps([f.to_dict() for f in result.findings])
    json.dumps(result.facts)
    return result


def tree_ok(node: dict[str, Any]) -> None:
    """Every node: lookups >= 0 and total == lookups + the children's totals."""
    assert node["lookups"] >= 0
    kids = node.get("children", [])
    for kid in kids:
        tree_ok(kid)
    assert node["total"] == node["lookups"] + sum(k["total"] for k in kids)


# --- SPF -------------------------------------------------------------------------------------

qualifier = st.sampled_from(["", "+", "-", "~", "?"])
valid_term = st.one_of(
    st.tuples(qualifier, st.sampled_from(
        ["include:inc1.spf.test", "include:inc2.spf.test", "include:loop.spf.test",
         "include:nospf.spf.test", "include:gone.spf.test", "a", "mx", "a:a.spf.test",
         "mx:mx.spf.test", "exists:a.spf.test", "ptr", "a/24", "ip4:192.0.2.1",
         "ip4:198.51.100.0/24", "ip6:2001:db8::/32", "include:%{d}.spf.test"])).map("".join),
    st.sampled_from(["exp=explain.spf.test", "x-custom=1"]),
)
bad_term = st.sampled_from(["ip4:300.1.1.1", "ip6:192.0.2.1", "include", "include:", "bogus",
                            "all:x", "ip4:1.2.3.4/99", "=", "a:b:c", "redirect=", "+", "exists"])


def syntax_expected(record: str) -> bool:
    """A bad term, or redirect=/exp= more than once (RFC 7208 6)."""
    parsed = parse_spf(record)
    mods = [t.name for t in parsed if t.modifier]
    return any(t.error for t in parsed) or any(mods.count(m) > 1 for m in ("redirect", "exp"))


def model_lookups(terms: list[str]) -> int:
    """The root's own count, from the term list alone (RFC 7208 4.6.4)."""
    parsed = parse_spf("v=spf1 " + " ".join(terms))
    has_all = any(t.name == "all" and not t.modifier for t in parsed)
    n = 0
    for t in parsed:
        if t.error or t.name not in COUNTED:
            continue
        if not t.modifier or (t.name == "redirect" and not has_all):
            n += 1
    return n


@DNS
@given(st.lists(valid_term, max_size=8),
       st.sampled_from(["", "-all", "~all", "?all", "+all", "redirect=inc1.spf.test"]))
def test_generated_spf_records_count_lookups(spf_dns: DnsServer, terms: list[str],
                                             end: str) -> None:
    record = " ".join(["v=spf1", *terms, end]).strip()
    result = run_check(spf_dns, check_spf, "root.spf.test", record)
    tree = result.facts["tree"]
    tree_ok(tree)
    assert tree["lookups"] == model_lookups([*terms, end])
    includes = [t.lstrip("+-~?").split(":", 1)[1] for t in terms
                if t.lstrip("+-~?").startswith("include:") and "%" not in t]
    redirect = INCLUDE_TOTALS["inc1.spf.test"] if end.startswith("redirect") else 0
    assert result.facts["lookups"] == tree["lookups"] + sum(
        INCLUDE_TOTALS[name] for name in includes) + redirect
    assert ("spf.syntax" in {f.id for f in result.findings}) == syntax_expected(record)


spf_noise = st.lists(st.one_of(valid_term, bad_term, st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=" \t\r\n"),
    min_size=1, max_size=15)), max_size=8)


@DNS
@given(spf_noise)
@example(["include:broken.spf.test", "a:" + "x" * 70 + ".spf.test", "include:.", "mx:..",
          "exists:%{i}", "redirect=loop.spf.test"])
def test_any_spf_terms_give_findings_never_exceptions(spf_dns: DnsServer, terms: list[str]) -> None:
    record = " ".join(["v=spf1", *terms])
    result = run_check(spf_dns, check_spf, "root.spf.test", record)
    tree_ok(result.facts["tree"])
    assert result.facts["lookups"] >= 0
    assert ("spf.syntax" in {f.id for f in result.findings}) == syntax_expected(record)


@FAST
@given(st.text(max_size=200))
def test_parse_spf_any_text(text: str) -> None:
    for term in parse_spf(text):
        assert term.text and (term.error is None or isinstance(term.error, str))


# --- DMARC -----------------------------------------------------------------------------------

policy = st.sampled_from(["none", "quarantine", "reject"])
mail_domain = st.from_regex(r"[a-z]{1,10}\.(test|example)", fullmatch=True)


@st.composite
def dmarc_records(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    tags = {"v": "DMARC1", "p": draw(policy)}
    optional = {
        "sp": policy, "np": policy, "pct": st.integers(0, 100).map(str),
        "adkim": st.sampled_from(["r", "s"]), "aspf": st.sampled_from(["r", "s"]),
        "fo": st.lists(st.sampled_from(["0", "1", "d", "s"]), min_size=1, max_size=3).map(":".join),
        "ri": st.integers(0, 10**6).map(str),
        "rua": mail_domain.map(lambda d: f"mailto:dmarc@{d}"),
    }
    for tag, strat in optional.items():
        if draw(st.booleans()):
            tags[tag] = draw(strat)
    spacing = draw(st.sampled_from(["; ", ";", " ; ", ";  "]))
    return spacing.join(f"{k}={v}" for k, v in tags.items()) + draw(st.sampled_from(["", ";"])), tags


@FAST
@given(dmarc_records())
def test_valid_dmarc_parses_to_its_tags(rec: tuple[str, dict[str, str]]) -> None:
    text, tags = rec
    parsed, problems = parse_dmarc(text)
    assert problems == [] and parsed == tags


dmarc_noise = st.lists(st.one_of(
    st.tuples(st.sampled_from(["v", "p", "sp", "pct", "ri", "fo", "adkim", "rua", "ruf", "x"]),
              st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=15)), max_size=8).map("; ".join)


@FAST
@given(st.one_of(st.text(max_size=120), dmarc_noise))
@example("v=DMARC1; p=reject; pct=²")
@example("v=DMARC1; p=reject; ri=²")
def test_any_dmarc_text_parses_without_exceptions(text: str) -> None:
    tags, problems = parse_dmarc(text)
    assert all(isinstance(p, str) for p in problems)
    assert not tags.get("v") == "DMARC1" or problems or "p" in tags


@DNS
@given(dmarc_noise.map(lambda t: "v=DMARC1; " + t))
@example("v=DMARC1; p=reject; pct=²")
@example("v=DMARC1; p=none; rua=mailto:a@b..; ruf=mailto:x@\u00e9\u00e9.test,mailto:@")
def test_check_dmarc_any_record_gives_findings(spf_dns: DnsServer, text: str) -> None:
    result = run_check(spf_dns, check_dmarc, "spf.test", text)
    assert result.findings


# --- DKIM key records --------------------------------------------------------------------------

@st.composite
def dkim_records(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    tags: dict[str, str] = {"v": "DKIM1"} if draw(st.booleans()) else {}
    if draw(st.booleans()):
        tags["k"] = "ed25519"
        tags["p"] = base64.b64encode(draw(st.binary(min_size=32, max_size=32))).decode()
    else:
        tags["k"] = "rsa"
        tags["p"] = ""  # revoked: RSA key data cannot be drawn cheaply
    if draw(st.booleans()):
        tags["h"] = "sha256"
    if draw(st.booleans()):
        tags["t"] = draw(st.sampled_from(["s", "y", "y:s"]))
    return "; ".join(f"{k}={v}" for k, v in tags.items()), tags


@FAST
@given(dkim_records())
def test_valid_dkim_records_parse_to_their_tags(rec: tuple[str, dict[str, str]]) -> None:
    text, tags = rec
    assert parse_dkim_key_record(text)["tags"] == tags
    ids = {f.id for f in evaluate_dkim_key_record(text)}
    assert "dkim.syntax" not in ids
    assert ("dkim.revoked" in ids) == (tags["p"] == "")
    assert ("dkim.testing" in ids) == ("y" in tags.get("t", "").split(":"))


dkim_noise = st.lists(st.one_of(
    st.tuples(st.sampled_from(["v", "k", "p", "h", "t", "s", "n"]),
              st.one_of(st.text(max_size=12), st.binary(max_size=64).map(
                  lambda b: base64.b64encode(b).decode()))).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=15)), max_size=8).map("; ".join)


@FAST
@given(st.one_of(st.text(max_size=120), dkim_noise))
@example("v=DKIM1; k=rsa; p=MAA=")
@example("v=DKIM1; k=rsa; p=" + base64.b64encode(b"\x30\x82\xff\xff").decode())
@example("k=ed25519; p=AAAA; h=md5")
def test_any_dkim_text_gives_findings(text: str) -> None:
    findings = evaluate_dkim_key_record(text, subject="s._domainkey.x.test")
    assert findings
    json.dumps([f.to_dict() for f in findings])


# --- MTA-STS policies -------------------------------------------------------------------------

@st.composite
def policies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    mode = draw(st.sampled_from(["enforce", "testing", "none"]))
    mxs = draw(st.lists(st.one_of(mail_domain, mail_domain.map(lambda d: "*." + d)),
                        min_size=1 if mode != "none" else 0, max_size=4))
    age = draw(st.integers(0, MAX_AGE_LIMIT))
    lines = [("version", "STSv1"), ("mode", mode), ("max_age", str(age))]
    lines += [("mx", m) for m in mxs]
    lines = draw(st.permutations(lines))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(f"{k}: {v}" for k, v in lines) + draw(st.sampled_from(["", eol]))
    mxs = [v for k, v in lines if k == "mx"]  # in the order written
    return text, {"version": "STSv1", "mode": mode, "max_age": str(age), "mx": mxs}


@FAST
@given(policies())
def test_valid_policies_parse_to_their_fields(pol: tuple[str, dict[str, Any]]) -> None:
    text, want = pol
    fields, problems = parse_policy(text)
    assert problems == []
    assert fields["mx"] == want["mx"] and {k: fields[k] for k in ("version", "mode", "max_age")} \
        == {k: want[k] for k in ("version", "mode", "max_age")}
    for pattern in want["mx"]:
        host = pattern.replace("*", "mx1")
        assert mx_matches(host, pattern) and not mx_matches("a.b." + host, pattern)


policy_noise = st.lists(st.one_of(
    st.tuples(st.sampled_from(["version", "mode", "max_age", "mx", "x"]),
              st.text(max_size=12)).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.text(max_size=20)), max_size=8).map("\n".join)


@FAST
@given(st.one_of(st.text(max_size=200), policy_noise))
@example("version: STSv1\nmode: none\nmax_age: \u00b2")
@example("version: STSv1\nmode: none\nmax_age: \u0663")
def test_any_policy_text_gives_fields_and_problems(text: str) -> None:
    fields, problems = parse_policy(text)
    assert isinstance(fields["mx"], list) and all(isinstance(p, str) for p in problems)
    json.dumps(fields)


@FAST
@given(st.lists(st.binary(max_size=12), max_size=6))
def test_chunked_bodies_round_trip(chunks: list[bytes]) -> None:
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
    assert _dechunk(wire) == b"".join(chunks)


@FAST
@given(st.binary(max_size=80))
@example(b"zz\r\nabc\r\n0\r\n\r\n")  # a hostile policy server's chunk size
def test_any_chunked_body_is_bytes_or_policy_error(data: bytes) -> None:
    try:
        assert isinstance(_dechunk(data), bytes)
    except PolicyFetchError:
        pass


@FAST
@given(st.text(max_size=30), st.text(max_size=30))
def test_mx_matches_any_text(host: str, pattern: str) -> None:
    assert mx_matches(host, pattern) in (True, False)


# --- TLS-RPT and BIMI -------------------------------------------------------------------------

rua = st.one_of(mail_domain.map(lambda d: f"mailto:tlsrpt@{d}"),
                mail_domain.map(lambda d: f"https://{d}/report"))


@FAST
@given(st.lists(rua, min_size=1, max_size=3))
def test_valid_tlsrpt_parses(uris: list[str]) -> None:
    tags, problems = parse_tlsrpt(f"v=TLSRPTv1; rua={','.join(uris)}")
    assert problems == [] and tags == {"v": "TLSRPTv1", "rua": ",".join(uris)}


@FAST
@given(mail_domain, st.booleans())
def test_valid_bimi_parses(domain: str, with_a: bool) -> None:
    text = f"v=BIMI1; l=https://{domain}/logo.svg" + (f"; a=https://{domain}/vmc.pem" if with_a
                                                       else "")
    tags, problems = parse_bimi(text)
    assert problems == [] and tags["l"] == f"https://{domain}/logo.svg"
    assert parse_bimi("v=BIMI1; l=")[1] == []  # an empty l= declines BIMI


tag_noise = st.lists(st.one_of(
    st.tuples(st.sampled_from(["v", "rua", "l", "a", "x"]),
              st.text(max_size=15)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=15)), max_size=6).map("; ".join)


@FAST
@given(st.one_of(st.text(max_size=120), tag_noise))
def test_any_tag_list_parses(text: str) -> None:
    pairs, bad = parse_tags(text)
    assert all(t and "=" not in t and ";" not in t and ";" not in v for t, v in pairs)
    assert all(";" not in b for b in bad)
    for parse in (parse_tlsrpt, parse_bimi):
        tags, problems = parse(text)
        assert all(isinstance(p, str) for p in problems)


@DNS
@given(tag_noise)
def test_check_tlsrpt_and_bimi_any_record(spf_dns: DnsServer, text: str) -> None:
    for check in (check_tlsrpt, check_bimi):
        run_check(spf_dns, check, "spf.test", text)
