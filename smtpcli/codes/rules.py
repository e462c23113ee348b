"""Provider and MTA rules (data/rules.json): the reply wording -> provider, cause, retry, advice.

Rules are data, first match wins. Patterns are compiled on first use only, so explaining a
bare code (`smtpcli explain 550 5.7.26`) never pays for compiling the text patterns.
"""

from __future__ import annotations

import re
from functools import cache

from smtpcli.codes.registry import _Record

_REGEX_META = frozenset("[](){}|*+?^$\\")


class Rule(_Record):
    """One rule of data/rules.json (fields documented in its _comment)."""

    __slots__ = ("id", "provider", "pattern", "enhanced", "basic", "cause", "retry_helps",
                 "summary", "fix", "references", "bare_note", "weak", "_compiled")
    id: str
    provider: str | None
    pattern: str | None
    enhanced: str | None
    basic: str | None
    cause: str | None
    retry_helps: bool | None
    summary: str | None
    fix: str | None
    references: tuple[str, ...]
    bare_note: str | None
    weak: bool
    _compiled: dict[str, re.Pattern[str]]

    def _re(self, name: str, source: str, flags: int = 0) -> re.Pattern[str]:
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = re.compile(source, flags)
        return compiled

    def _full(self, name: str, source: str, value: str) -> bool:
        """``source`` fully matches ``value``; a literal code (``5\\.7\\.26``) is compared as
        a string, so explaining a bare code compiles no code pattern (start-up, issue 17)."""
        plain = source.replace("\\.", ".")
        if not any(c in _REGEX_META for c in plain):
            return value == plain
        return self._re(name, source).fullmatch(value) is not None

    def codes_match(self, code: int | None, enhanced: str | None) -> bool:
        """The rule's code constraints (if any) hold for this reply."""
        if self.enhanced is not None and (
            enhanced is None or not self._full("enhanced", self.enhanced, enhanced)
        ):
            return False
        if self.basic is not None and (
            code is None or not self._full("basic", self.basic, str(code))
        ):
            return False
        return True

    def text_matches(self, text: str) -> bool:
        if self.pattern is None:
            return True
        return self._re("pattern", self.pattern, re.I).search(text) is not None


class RuleSet(_Record):
    """The ordered rules plus the provider hints."""

    __slots__ = ("rules", "providers", "_provider_res")
    rules: list[Rule]
    providers: list[tuple[str, str]]
    _provider_res: list[tuple[str, re.Pattern[str]]] | None

    def match(self, text: str, code: int | None, enhanced: str | None, *, bare: bool) -> Rule | None:
        """The first rule whose code constraints and pattern match; for a bare code only rules
        without a pattern (codes that are in no registry, or distinctive combinations)."""
        for rule in self.rules:
            if bare and rule.pattern is not None:
                continue
            if rule.pattern is None and rule.enhanced is None and rule.basic is None:
                continue
            if rule.codes_match(code, enhanced) and rule.text_matches(text):
                return rule
        return None

    def bare_notes(self, code: int | None, enhanced: str | None) -> list[str]:
        """What providers mean by this code when they reuse it (shown for bare codes)."""
        return [
            r.bare_note for r in self.rules
            if r.bare_note and (r.enhanced or r.basic) and r.codes_match(code, enhanced)
        ]

    def provider_hint(self, text: str) -> str | None:
        """The provider named by host names or URLs in the text (gsmtp, outlook.com, ...)."""
        if self._provider_res is None:
            self._provider_res = [(p, re.compile(src, re.I)) for p, src in self.providers]
        for provider, regex in self._provider_res:
            if regex.search(text):
                return provider
        return None

    def code_only_rules(self) -> list[Rule]:
        """Rules that give a meaning to a code by itself (provider codes in no registry)."""
        return [r for r in self.rules if r.pattern is None and r.enhanced and not r.basic]


@cache
def load_rules() -> RuleSet:
    from smtpcli.codes.tables import RULES as data
    rules = [
        Rule(
            id=r["id"], provider=r.get("provider"), pattern=r.get("pattern"),
            enhanced=r.get("enhanced"), basic=r.get("basic"), cause=r.get("cause"),
            retry_helps=r.get("retry_helps"), summary=r.get("summary"), fix=r.get("fix"),
            references=tuple(r.get("references", ())), bare_note=r.get("bare_note"),
            weak=bool(r.get("weak")), _compiled={},
        )
        for r in data["rules"]
    ]
    providers = [(p["provider"], p["pattern"]) for p in data["providers"]]
    return RuleSet(rules=rules, providers=providers, _provider_res=None)
