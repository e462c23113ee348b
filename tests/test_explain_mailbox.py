"""`smtpcli explain --mailbox`: a Maildir or an mbox of bounces, explained in one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import tests.test_explain_cli as cli_tests
from tests.test_explain_corpus import CORPUS, _expectations, _need_corpus

run = cli_tests.run  # the same CLI runner fixture (stdin may be bytes)
DATA = Path(__file__).parent / "data" / "explain"
NOT_A_BOUNCE = b"From: a@example.org\nTo: b@example.org\nSubject: lunch\n\nnoon?\n"


def _maildir(root: Path, messages: dict[str, bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (root / "cur" / f"{name}:2,S").write_bytes(raw)
    return root


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_maildir_json_lines(run, tmp_path: Path) -> None:
    box = _maildir(tmp_path / "md", {
        "1": (DATA / "postfix-dsn-3rcpt.eml").read_bytes(),
        "2": (DATA / "gmail-dsn-2rcpt.eml").read_bytes(),
        "3": NOT_A_BOUNCE,
        "4": b"\x00\x01 not mail at all",
    })
    code, out, err = run("explain", "--mailbox", str(box), "--json")
    assert code == 0 and err == ""
    lines = _lines(out)
    records = [x for x in lines if x["type"] == "record"]
    assert len(records) == 5 and all(x["schema"] == 1 for x in lines)
    assert {x["file"].rsplit("/", 1)[1] for x in records} == {"1:2,S", "2:2,S"}
    assert all(x["date"] and x["cause"] for x in records)
    by_file = {x["file"].rsplit("/", 1)[1]: x["message_id"] for x in records}
    assert by_file == {"1:2,S": "<20240910091244.3F1A21C0123@mx.example.org>", "2:2,S": None}
    errors = [x for x in lines if x["type"] == "error"]
    assert [e["file"].rsplit("/", 1)[1] for e in errors] == ["4:2,S"]
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert (summary["messages"], summary["bounces"], summary["skipped"],
            summary["malformed"], summary["records"]) == (4, 2, 1, 1, 5)
    assert summary["by_class"] == {"permanent": 4, "transient": 1}
    assert sum(summary["by_cause"].values()) == 5


def test_mbox_on_stdin_and_text_tables(run) -> None:
    parts = [(DATA / "postfix-dsn-3rcpt.eml").read_bytes(), NOT_A_BOUNCE,
             (DATA / "gmail-dsn-2rcpt.eml").read_bytes()]
    mbox = b"".join(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + p.rstrip(b"\n")
                    + b"\n\n" for p in parts)
    code, out, err = run("explain", "--mailbox", "-", stdin=mbox)
    assert code == 0 and err == ""
    for title in ("records by cause", "records by class", "records by recipient domain",
                  "top rejecting servers"):
        assert title in out
    assert "3 messages: 2 bounces with 5 recipient records, 1 not bounces (skipped)" in out
    assert "recipient-unknown" in out and "example.com" in out
    assert run("explain", "--mailbox", "-", "--exit-status", stdin=mbox)[0] == 5
    code, out, _ = run("explain", "--mailbox", "-", "--exit-status", stdin=NOT_A_BOUNCE)
    assert code == 0 and "0 bounces" in out


def test_malformed_message_is_reported_and_run_goes_on(run, tmp_path: Path) -> None:
    box = _maildir(tmp_path / "md", {"a": b"", "b": (DATA / "gmail-dsn-2rcpt.eml").read_bytes()})
    code, out, err = run("explain", "--mailbox", str(box))
    assert code == 0
    assert "a:2,S: malformed" in err and "Traceback" not in err
    assert "1 bounces with 2 recipient records" in out


def test_usage_errors(run, tmp_path: Path) -> None:
    code, _, err = run("explain", "--mailbox", str(tmp_path / "missing"))
    assert code == 2 and "no such mailbox" in err
    code, _, err = run("explain", "--mailbox", str(tmp_path), "550")
    assert code == 2 and "--mailbox takes no" in err


def test_corpus_maildir(run, tmp_path: Path) -> None:
    """The whole corpus as a Maildir: every email explained with exactly its records."""
    _need_corpus()
    expected = {e["file"]: e for e in _expectations()}
    box = tmp_path / "corpus"
    (box / "new").mkdir(parents=True)
    for name in expected:
        shutil.copyfile(CORPUS / name, box / "new" / name)
    code, out, err = run("explain", "--mailbox", str(box), "--json")
    assert code == 0 and "Traceback" not in err
    lines = _lines(out)
    summary = lines[-1]
    assert summary["messages"] == summary["bounces"] == len(expected)
    assert summary["malformed"] == summary["unexplained"] == summary["skipped"] == 0
    per_file: dict[str, set[str]] = {}
    for line in lines[:-1]:
        assert line["type"] == "record"
        per_file.setdefault(line["file"].rsplit("/", 1)[1], set()).add(
            (line["recipient"] or "").lower())
    assert set(per_file) == set(expected)
    right = sum(per_file[f] == {r["recipient"] for r in e["records"]}
                for f, e in expected.items())
    assert right / len(expected) >= 0.95
