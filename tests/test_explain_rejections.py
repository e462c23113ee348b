"""Real rejection lines from public sources (tests/data/explain/rejections.json): each asserts
class, enhanced code, cause and retry_helps (and provider / basic code where given)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smtpcli.codes.explainer import explain_text

CORPUS = json.loads(
    (Path(__file__).parent / "data" / "explain" / "rejections.json").read_text(encoding="utf-8")
)["lines"]


def test_corpus_is_large_and_sourced() -> None:
    assert len(CORPUS) >= 60
    assert all(entry["source"].strip() for entry in CORPUS)
    providers = {entry.get("provider") for entry in CORPUS}
    assert {"Gmail", "Microsoft", "Yahoo", "iCloud", "Postfix", "Exim", "Sendmail",
            "Spamhaus"} <= providers
    causes = {entry["cause"] for entry in CORPUS}
    assert len(causes) >= 18


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{i}:{e['line'][:40]}" for i, e in
                                               enumerate(CORPUS)])
def test_rejection_line(entry: dict[str, Any]) -> None:
    _, records = explain_text(entry["line"])
    assert len(records) == 1
    record = records[0]
    assert record["class"] == entry["class"]
    assert record["enhanced"] == entry["enhanced"]
    assert record["cause"] == entry["cause"]
    assert record["retry_helps"] is entry["retry_helps"]
    if "provider" in entry:
        assert record["provider"] == entry["provider"]
    if "code" in entry:
        assert record["code"] == entry["code"]
    assert record["summary"] and record["fix"] and record["references"]
