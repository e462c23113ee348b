"""Fault rules for the capture server: ``--reply``, ``--delay``, ``--drop``, parsed and matched.

Syntax (docs/serve.md):

* ``--reply STAGE:CODE [TEXT][:COND]``  answer CODE TEXT instead of the normal reply
* ``--delay STAGE:MS[:COND]``           wait MS milliseconds before replying
* ``--drop STAGE[:COND]``               close the connection instead of replying

COND is a percentage (``30`` or ``30%``) or a match ``KEY=GLOB`` with KEY one of ``from``,
``to``, ``helo``, ``user``, ``peer``, or a counter ``nth=N`` (only the Nth time the stage is
reached, server-wide) / ``first=N`` (the first N times), handy for retry tests.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from smtpcli.errors import UsageError

#: Points of an SMTP session a fault can hit. ``data`` is the reply to the DATA command (354),
#: ``dot`` the reply after the message's final "." (RFC 5321 4.1.1.4).
STAGES: tuple[str, ...] = (
    "connect", "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot",
    "rset", "noop", "vrfy", "quit",
)
#: Stages where a success reply (2xx/3xx) may replace the normal text and the command still
#: takes effect; elsewhere a fault reply must be a rejection (4xx/5xx).
SUCCESS_REPLY_STAGES = frozenset({"connect", "mail", "rcpt", "dot"})
COUNTER_KEYS = ("nth", "first")

_PCT = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*%?\s*$")
_COND = re.compile(r"^\s*(from|to|helo|user|peer|nth|first)\s*=\s*(\S.*?)\s*$", re.IGNORECASE)


@dataclass
class Condition:
    """When a rule applies: always, with a probability, on a match, or by occurrence count."""

    pct: float | None = None
    key: str | None = None
    pattern: str | None = None
    count: int | None = None
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def describe(self) -> str | None:
        if self.pct is not None:
            return f"{self.pct:g}%"
        if self.key in COUNTER_KEYS:
            return f"{self.key}={self.count}"
        if self.key is not None:
            return f"{self.key}={self.pattern}"
        return None

    def matches(self, ctx: Mapping[str, object], rng: random.Random) -> bool:
        if self.pct is not None:
            return rng.random() * 100.0 < self.pct
        if self.key in COUNTER_KEYS:
            assert self.count is not None
            with self._lock:
                self.seen += 1
                n = self.seen
            return n == self.count if self.key == "nth" else n <= self.count
        if self.key is None:
            return True
        assert self.pattern is not None
        value = ctx.get(self.key)
        values = value if isinstance(value, (list, tuple)) else [value]
        pattern = self.pattern.lower()
        return any(
            v is not None and fnmatch.fnmatchcase(str(v).lower(), pattern) for v in values
        )


def is_condition(text: str) -> bool:
    return bool(_PCT.match(text) or _COND.match(text))


def parse_condition(text: str, spec: str) -> Condition:
    m = _PCT.match(text)
    if m:
        pct = float(m.group(1))
        if not 0 <= pct <= 100:
            raise UsageError(f"percentage out of range in {spec!r}: give 0 to 100")
        return Condition(pct=pct)
    m = _COND.match(text)
    if not m:
        raise UsageError(f"bad condition {text!r} in {spec!r}")
    key, value = m.group(1).lower(), m.group(2)
    if key in COUNTER_KEYS:
        # isdecimal, not isdigit: '²' is a digit that int() rejects.
        if not value.isdecimal() or int(value) < 1:
            raise UsageError(f"{key}= needs a positive number in {spec!r}")
        return Condition(key=key, count=int(value))
    return Condition(key=key, pattern=value)


def _split_stage(spec: str, option: str) -> tuple[str, str]:
    stage, _, rest = spec.partition(":")
    stage = stage.strip().lower()
    if stage == "message":  # friendly alias for the reply after the final dot
        stage = "dot"
    if stage not in STAGES:
        raise UsageError(
            f"unknown stage {stage!r} in {option} {spec!r} (choose one of {', '.join(STAGES)})"
        )
    return stage, rest


def _split_condition(rest: str, spec: str) -> tuple[str, Condition]:
    head, sep, tail = rest.rpartition(":")
    if sep and is_condition(tail):
        return head, parse_condition(tail, spec)
    return rest, Condition()


@dataclass
class ReplyRule:
    stage: str
    code: int
    text: str
    when: Condition = field(default_factory=Condition)

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class DelayRule:
    stage: str
    ms: int
    when: Condition = field(default_factory=Condition)


@dataclass
class DropRule:
    stage: str
    when: Condition = field(default_factory=Condition)


def _default_text(code: int) -> str:
    # RFC 3463 enhanced status code class matches the reply class.
    return f"{code // 100}.0.0 Error injected by smtpcli serve" if code >= 400 else "Ok"


def parse_reply(spec: str) -> ReplyRule:
    """``STAGE:CODE [TEXT][:COND]`` -> ReplyRule; raises UsageError."""
    stage, rest = _split_stage(spec, "--reply")
    body, cond = _split_condition(rest, spec)
    code_text, _, text = body.strip().partition(" ")
    if not re.fullmatch(r"[2-5]\d\d", code_text):
        raise UsageError(f"--reply {spec!r}: the code must be three digits from 200 to 599")
    code = int(code_text)
    if code < 400 and stage not in SUCCESS_REPLY_STAGES:
        raise UsageError(
            f"--reply {spec!r}: a success reply only works at "
            f"{', '.join(sorted(SUCCESS_REPLY_STAGES))}; use a 4xx or 5xx code here"
        )
    if stage == "connect" and 200 <= code < 300 and code != 220:
        raise UsageError(f"--reply {spec!r}: a greeting must be 220 (RFC 5321 4.2)")
    if "\r" in text or "\n" in text:
        raise UsageError(f"--reply {spec!r}: the text must be one line")
    return ReplyRule(stage, code, text.strip() or _default_text(code), cond)


def parse_delay(spec: str) -> DelayRule:
    """``STAGE:MS[:COND]`` -> DelayRule."""
    stage, rest = _split_stage(spec, "--delay")
    body, cond = _split_condition(rest, spec)
    body = body.strip().lower().removesuffix("ms")
    if not body.isdecimal():
        raise UsageError(f"--delay {spec!r}: give STAGE:MILLISECONDS, for example rcpt:2000")
    return DelayRule(stage, int(body), cond)


def parse_drop(spec: str) -> DropRule:
    """``STAGE[:COND]`` -> DropRule."""
    stage, rest = _split_stage(spec, "--drop")
    if rest.strip():
        if not is_condition(rest):
            raise UsageError(f"--drop {spec!r}: give STAGE or STAGE:PERCENT or STAGE:KEY=GLOB")
        return DropRule(stage, parse_condition(rest, spec))
    return DropRule(stage)


@dataclass
class Decision:
    """What to do at one stage: wait, then close, or answer with a fault reply."""

    delay_ms: int = 0
    drop: DropRule | None = None
    reply: ReplyRule | None = None
    delay_rule: DelayRule | None = None

    @property
    def empty(self) -> bool:
        return not (self.delay_ms or self.drop or self.reply)


NO_DECISION = Decision()


class FaultPlan:
    """All fault rules of a server, indexed by stage."""

    def __init__(
        self,
        replies: Iterable[ReplyRule] = (),
        delays: Iterable[DelayRule] = (),
        drops: Iterable[DropRule] = (),
        seed: int | None = None,
    ) -> None:
        self.replies = list(replies)
        self.delays = list(delays)
        self.drops = list(drops)
        self._stages = (
            {r.stage for r in self.replies} | {d.stage for d in self.delays}
            | {d.stage for d in self.drops}
        )
        self._rng = random.Random(seed)
        self._cli_replies = list(self.replies)
        self._cli_stages = set(self._stages)
        self._chaos: dict[str, ReplyRule] = {}

    def __bool__(self) -> bool:
        return bool(self._stages)

    def has(self, stage: str) -> bool:
        return stage in self._stages

    def decide(self, stage: str, ctx: Mapping[str, object]) -> Decision:
        """First matching rule of each kind at ``stage`` (rules are tried in option order)."""
        if stage not in self._stages:
            return NO_DECISION
        decision = Decision()
        for d in self.delays:
            if d.stage == stage and d.when.matches(ctx, self._rng):
                decision.delay_ms, decision.delay_rule = d.ms, d
                break
        for dr in self.drops:
            if dr.stage == stage and dr.when.matches(ctx, self._rng):
                decision.drop = dr
                return decision
        for r in self.replies:
            if r.stage == stage and r.when.matches(ctx, self._rng):
                decision.reply = r
                break
        return decision

    # -- Mailpit's chaos triggers (PUT /api/v1/chaos), as reply rules with a percentage -------
    def chaos(self) -> dict[str, ReplyRule]:
        """The rules set through the HTTP API, by stage (mail, rcpt, auth)."""
        return dict(self._chaos)

    def set_chaos(self, rules: dict[str, ReplyRule]) -> None:
        """Replace the API-set rules; they are tried before the command line's, and a rule
        with 0% is dropped. New lists are swapped in whole, so a session reading the plan
        from the SMTP thread sees the old set or the new one, never half of it."""
        self._chaos = {stage: r for stage, r in rules.items() if r.when.pct}
        replies = [*self._chaos.values(), *self._cli_replies]
        stages = self._cli_stages | set(self._chaos)
        self.replies, self._stages = replies, stages
