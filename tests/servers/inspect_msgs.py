"""Helpers for the inspect/dkim tests: keys made at test time, messages, signing, zones."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest

from smtpcli.checks.dkimkeys import KeyPair, generate, zone_line
from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE

SENDER_IP = "192.0.2.10"  # allowed by the sender's SPF record in the zones below
OTHER_IP = "198.51.100.7"  # not allowed


@functools.cache
def key(name: str, key_type: str = "rsa", bits: int = 1024) -> KeyPair:
    """A key pair made once per test session (1024 bits: fast, and the minimum verifiers take)."""
    return generate(key_type, bits)


def signing_key(pair: KeyPair) -> tuple[bytes, bytes]:
    """(key bytes for dkimpy, signature algorithm)."""
    if pair.key_type == "ed25519":
        return pair.private.strip(), b"ed25519-sha256"
    return pair.private, b"rsa-sha256"


def message(
    *,
    from_: str = "Alice <alice@sender.test>",
    subject: str = "Quarterly report",
    body: str = "Hello Bob,\r\n\r\nthe numbers are attached.\r\n",
    received: list[str] | None = None,
    extra: list[str] | None = None,
    return_path: str | None = "<bounces@sender.test>",
) -> bytes:
    """A plain CRLF message; `received` top first, as the final MTA would have stacked them."""
    lines = []
    if return_path is not None:
        lines.append(f"Return-Path: {return_path}")
    lines += [f"Received: {r}" for r in (received or [])]
    lines += [
        f"From: {from_}", "To: Bob <bob@rcpt.test>", f"Subject: {subject}",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000", "Message-ID: <m1.20240101@sender.test>",
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
    ]
    lines += extra or []
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def default_received(ip: str = SENDER_IP) -> list[str]:
    """Two hops at the recipient (mx then internal delivery), top first."""
    return [
        "from mx1.rcpt.test (mx1.rcpt.test [10.0.0.5]) by store.rcpt.test with LMTP id 77A; "
        "Mon, 01 Jan 2024 10:00:07 +0000",
        f"from out.sender.test (out.sender.test [{ip}]) by mx1.rcpt.test (Postfix) with ESMTPS "
        "id 4TxyZ for <bob@rcpt.test>; Mon, 01 Jan 2024 10:00:05 +0000",
        "from [10.1.1.2] (helo=laptop) by out.sender.test with ESMTPSA id abc; "
        "Mon, 01 Jan 2024 10:00:01 +0000",
    ]


def sign(
    msg: bytes, pair: KeyPair, selector: str = "s1", domain: str = "sender.test", **kw: Any
) -> bytes:
    priv, alg = signing_key(pair)
    kw.setdefault("include_headers", [b"from", b"to", b"subject", b"date", b"message-id"])
    sig = dkim.sign(msg, selector.encode(), domain.encode(), priv, signature_algorithm=alg, **kw)
    return sig + msg


def sign_after_return_path(msg: bytes, pair: KeyPair, **kw: Any) -> bytes:
    """Sign the message as the sender would have, before Return-Path/Received were added.

    Signing happens on the part below the trace fields; they are put back on top afterwards.
    """
    lines = msg.split(b"\r\n")
    trace = [ln for ln in lines if ln.startswith((b"Return-Path:", b"Received:"))]
    rest = b"\r\n".join(ln for ln in lines if ln not in trace)
    signed = sign(rest, pair, **kw)
    return b"\r\n".join(trace + [signed]) if trace else signed


def zone(origin: str, records: list[str]) -> str:
    return f"$ORIGIN {origin}\n$TTL 300\n" + "\n".join(records) + "\n"


def key_line(selector: str, domain: str, pair: KeyPair | None = None, value: str | None = None
             ) -> str:
    return zone_line(selector, domain, value if value is not None else pair.txt_value()
                     if pair else "")


def sender_zone(*extra: str, dmarc: str = "v=DMARC1; p=reject; adkim=r; aspf=r",
                spf: str = f"v=spf1 ip4:{SENDER_IP} -all") -> str:
    records = [f'sender.test. IN TXT "{spf}"', f'_dmarc.sender.test. IN TXT "{dmarc}"']
    return zone("sender.test.", records + list(extra))


def write(tmp_path: Path, data: bytes, name: str = "msg.eml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
            ) -> Callable[..., tuple[int, bytes, str]]:
    """Run `smtpcli ARGS` in-process: (exit code, stdout bytes, stderr text)."""

    def _run(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
        STATE.json = STATE.traceback = False
        if stdin is not None:
            import io
            import sys

            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        with pytest.raises(SystemExit) as exc:
            main_module.main(list(args))
        out, err = capsysbinary.readouterr()
        return int(exc.value.code or 0), out, err.decode("utf-8", "replace")

    return _run


def as_json(out: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out)
    return doc


def ids(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Findings grouped by id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        out.setdefault(f["id"], []).append(f)
    return out
