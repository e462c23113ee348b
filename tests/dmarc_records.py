"""DMARC records for the lint table and the checkdmarc differential test: RFC 7489's own
examples (Appendix B, 6.2) and one departure from its grammar (6.3, 6.4) per line."""

from __future__ import annotations

import json
from typing import Any

#: (record, valid by RFC 7489, tags with a fail-level problem, tags with a warning)
RECORDS: list[tuple[str, bool, set[str], set[str]]] = [
    # RFC 7489 Appendix B.2.1 - B.2.4 and 6.2's size-limited URI
    ("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com", True, set(), set()),
    ("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; "
     "ruf=mailto:auth-reports@thirdparty.example.net", True, set(), set()),
    ("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com,"
     "mailto:tld-test@thirdparty.example.net!10m", True, set(), set()),
    ("v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,"
     "mailto:tld-test@thirdparty.example.net!10m; pct=25", True, set(), set()),
    ("v=DMARC1; p=reject; rua=mailto:reports@example.com!50m", True, set(), set()),
    ("v=DMARC1;p=reject;sp=none;adkim=s;aspf=r;fo=0:d:s;rf=afrf;ri=86400;pct=100;", True,
     set(), set()),
    ("v = DMARC1 ; p = reject ; rua = mailto:d@example.com", True, set(), set()),
    # departures from the grammar
    ("v=DMARC1; p=block", False, {"p"}, set()),
    ("v=dmarc1; p=none", False, {"v"}, set()),
    ("v=DMARC2; p=none", False, {"v"}, set()),
    ("p=none; v=DMARC1", False, {"v"}, set()),
    ("v=DMARC1; sp=reject", False, {"p"}, set()),
    ("v=DMARC1; p=none; sp=maybe", False, {"sp"}, set()),
    ("v=DMARC1; p=none; p=reject", False, {"p"}, set()),
    ("v=DMARC1; p=none; pct=101", False, {"pct"}, set()),
    ("v=DMARC1; p=none; pct=-5", False, {"pct"}, set()),
    ("v=DMARC1; p=none; pct=50%", False, {"pct"}, set()),
    ("v=DMARC1; p=none; ri=hourly", False, {"ri"}, set()),
    ("v=DMARC1; p=none; ri=4294967296", False, {"ri"}, set()),
    ("v=DMARC1; p=none; adkim=strict", False, {"adkim"}, set()),
    ("v=DMARC1; p=none; aspf=x", False, {"aspf"}, set()),
    ("v=DMARC1; p=none; fo=2", False, {"fo"}, set()),
    ("v=DMARC1; p=none; fo=0:x", False, {"fo"}, set()),
    ("v=DMARC1; p=none; rf=afrf,iodef", False, {"rf"}, set()),
    ("v=DMARC1; p=none; rua=mailto:d@example.com!10x", False, {"rua"}, set()),
    ("v=DMARC1; p=none; rua=mailto:d@example.com!m", False, {"rua"}, set()),
    ("v=DMARC1; p=none; rua=d@example.com", False, {"rua"}, set()),
    ("v=DMARC1; p=none; ruf=mailto:nobody", False, {"ruf"}, set()),
    ("v=DMARC1; p=none; rua=mailto:a@example.com,", False, {"rua"}, set()),
    ("v=DMARC1; p=none; rua", False, set(), set()),
    # valid, with warnings
    ("v=DMARC1; p=none; rf=iodef", True, set(), {"rf"}),
    ("v=DMARC1; p=none; foo=bar", True, set(), {"foo"}),
    ("v=DMARC1; pct=50; p=reject", True, set(), {"p"}),
    ("v=DMARC1; p=none; rua=https://example.com/dmarc", True, set(), {"rua"}),
    ("v=DMARC1; p=none;; sp=reject", False, {""}, set()),
]


def record_verdict(cli, record: str) -> tuple[bool, list[dict[str, Any]]]:
    """check-domain --record: (valid, findings); a text it does not take for a DMARC record
    (RFC 7489 6.6.3: it must start with v=DMARC1) is record.unknown."""
    code, out, err = cli("check-domain", "--record", record, "example.com", "--json",
                         "--nameserver", "127.0.0.1:9", "--timeout", "0.2",
                         "--dns-retries", "0")
    assert "Traceback" not in err and code in (0, 1, 3), (code, err)  # 3: rua auth lookup
    findings = json.loads(out)["findings"]
    bad = {f["id"] for f in findings if f["status"] == "fail"
           and f["id"] in ("dmarc.syntax", "dmarc.rua-invalid", "record.unknown")}
    return not bad, findings
