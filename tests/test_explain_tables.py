"""The explain tables themselves: registry copies, advice and provider rules are consistent."""

from __future__ import annotations

import csv
import json
import os
import re

import pytest

from smtpcli.codes.registry import CAUSES, CLASS_NAMES, DATA_DIR, load_advice, load_registry
from smtpcli.codes.rules import load_rules


def _csv(name: str) -> list[dict[str, str]]:
    with open(os.path.join(DATA_DIR, name), encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_enhanced_codes_unique_and_well_formed() -> None:
    keys = [row["code"] for row in _csv("enhanced-status-codes.csv")]
    assert len(keys) == len(set(keys))
    assert all(re.fullmatch(r"X\.[0-7]\.\d{1,3}", k) for k in keys), keys
    # The copy runs from X.0.0 to X.7.30 (IANA export of 2020).
    assert {"X.0.0", "X.1.10", "X.6.10", "X.7.26", "X.7.30"} <= set(keys)


def test_basic_codes_unique_and_class_digit_matches_class_column() -> None:
    rows = _csv("basic-reply-codes.csv")
    codes = [int(r["code"]) for r in rows]
    assert len(codes) == len(set(codes))
    for row in rows:
        assert row["class"].startswith(row["code"][0]), row
        assert int(row["code"][0]) in CLASS_NAMES


def test_every_entry_has_a_summary_and_title() -> None:
    registry = load_registry()
    for entry in registry.enhanced.values():
        assert entry.title.strip(), entry.key
        assert entry.summary.strip().endswith("."), entry.key
    for entry in registry.basic.values():
        assert entry.summary.strip(), entry.code
    assert set(registry.subjects) == set(range(8))
    assert set(registry.classes) == {2, 4, 5}


def test_registry_quirks_are_handled() -> None:
    registry = load_registry()
    assert "X.6.8" in registry.enhanced["X.6.10"].title  # no title in the registry
    assert registry.enhanced["X.7.28"].basic_codes == ""  # a literal "." in the registry


def test_suggested_enhanced_codes_exist_and_share_the_class() -> None:
    registry = load_registry()
    for entry in registry.basic.values():
        if entry.suggested_enhanced:
            assert entry.suggested_enhanced[0] == str(entry.code)[0]
            assert registry.enhanced_entry(entry.suggested_enhanced) is not None


def test_advice_covers_every_code_and_uses_known_causes() -> None:
    advice = load_advice()
    registry = load_registry()
    assert set(advice["causes"]) == set(CAUSES)
    assert set(advice["enhanced"]) == set(registry.enhanced)
    assert {int(c) for c in advice["basic"]} == set(registry.basic)
    for table in ("enhanced", "basic"):
        for key, value in advice[table].items():
            assert value["cause"] is None or value["cause"] in CAUSES, key
    for cause, value in advice["causes"].items():
        assert value["fix"].strip(), cause


def test_success_codes_have_no_cause() -> None:
    registry = load_registry()
    for code, entry in registry.basic.items():
        assert (entry.cause is None) == (code < 400), code


def test_rules_are_valid_data() -> None:
    with open(os.path.join(DATA_DIR, "rules.json"), encoding="utf-8") as fh:
        raw = json.load(fh)["rules"]
    ids = [r["id"] for r in raw]
    assert len(ids) == len(set(ids))
    allowed = {"id", "provider", "pattern", "enhanced", "basic", "cause", "retry_helps", "summary",
               "fix", "references", "bare_note", "weak"}
    for rule in raw:
        assert set(rule) <= allowed, rule["id"]
        assert rule.get("pattern") or rule.get("enhanced") or rule.get("basic"), rule["id"]
        for key in ("pattern", "enhanced", "basic"):
            if rule.get(key):
                re.compile(rule[key])
        assert rule.get("cause") in CAUSES, rule["id"]
        assert rule.get("summary", "").endswith("."), rule["id"]
        assert rule.get("references"), rule["id"]
        assert rule.get("retry_helps") in (None, True, False)


@pytest.mark.parametrize("code", ["5.7.708", "5.7.606", "5.7.649", "5.7.509", "5.7.515",
                                  "5.7.139", "5.7.501", "4.7.650"])
def test_microsoft_codes_outside_the_registry_have_rules(code: str) -> None:
    assert load_registry().enhanced_entry(code) is None
    rule = load_rules().match(code, None, code, bare=True)
    assert rule is not None and rule.provider == "Microsoft"


def test_package_never_reads_the_shared_reference_at_run_time() -> None:
    for name in os.listdir(os.path.dirname(DATA_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(os.path.dirname(DATA_DIR), name), encoding="utf-8") as fh:
                assert "shared/reference" not in fh.read(), name


def test_generated_tables_are_current() -> None:
    """smtpcli/codes/tables.py is the data files' generated copy: it must say what they say."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "gen_code_tables.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
