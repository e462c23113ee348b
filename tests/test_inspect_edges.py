"""inspect: signatures whose key name is no DNS name are malformed (permanent fail, never a
failed lookup: RFC 6376 3.5, RFC 8617 5.2) (issue 14)."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest

from tests.servers.inspect_msgs import (
    as_json,
    ids,
    key,
    key_line,
    message,
    run_cli,
    sender_zone,
    sign,
    signing_key,
    write,
    zone,
)

__all__ = ["run_cli"]


@pytest.mark.parametrize("bad", [b"s=;", b"s=" + b"x" * 64 + b";"])
def test_dkim_signature_with_unusable_selector_is_malformed(dns_server, run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             bad: bytes) -> None:
    sender = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", sender))})
    signed = sign(message(), sender).replace(b"s=s1;", bad, 1)
    code, out, err = run_cli("inspect", "--json", "--nameserver", dns.nameserver,
                             str(write(tmp_path, signed)))
    doc = as_json(out)
    assert code == 1, err
    assert "dkim.malformed" in ids(doc) and "dkim.key-lookup-failed" not in ids(doc)
    assert not any(q.qname.startswith(("._domainkey", "x" * 64)) for q in dns.queries)


def test_arc_seal_with_empty_selector_is_a_fail_not_a_lookup_error(dns_server, run_cli,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:
    lst = key("list")
    dns = dns_server(zones={"list.test.": zone("list.test.", [key_line("arc", "list.test", lst)]),
                            "sender.test.": sender_zone()})
    base = b"Authentication-Results: lists.list.test; dkim=none\r\n" + message()
    priv, _ = signing_key(lst)
    sealed = b"".join(dkim.arc_sign(base, b"arc", b"list.test", priv, b"lists.list.test",
                                    include_headers=[b"from", b"subject"])) + base
    code, out, err = run_cli("inspect", "--json", "--nameserver", dns.nameserver,
                             str(write(tmp_path, sealed.replace(b"s=arc;", b"s=;"))))
    doc = as_json(out)
    assert code == 1, err
    found = {f["id"]: f for f in doc["findings"]}
    assert "arc.fail" in found and "arc.lookup-failed" not in found
    assert "not a valid DNS name" in found["arc.fail"]["detail"]


def test_hop_delays_read_as_durations_and_negative_ones_as_clock_skew(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    received = [  # top first, as the final MTA stacked them
        "from b.test (b.test [192.0.2.2]) by c.test with ESMTP; Mon, 01 Jan 2024 10:00:00 +0000",
        "from a.test (a.test [192.0.2.1]) by b.test with ESMTP; Mon, 01 Jan 2024 10:00:02 +0000",
        "from x.test (x.test [192.0.2.9]) by a.test with ESMTP; Sat, 01 Jan 2018 09:59:59 +0000",
    ]
    code, out, _ = run_cli("inspect", "--offline", str(write(tmp_path, message(received=received))))
    text = out.decode()
    assert "+-" not in text and "+189" not in text
    assert "-2s (clock skew)" in text
    assert "+6y" in text
