"""Which reader fits the input: DSN recipient blocks (RFC 3464), a plain-text bounce layout,
or the text as one reply. Kept apart from ``parse`` (one reply) and ``bounce_text`` (MTA
layouts), which both build on ``parse``."""

from __future__ import annotations

from smtpcli.codes.parse import Reply, dsn_from_mime, dsn_from_text, parse_reply


def find_replies(text: str) -> list[Reply]:
    """Every reply in the input: DSN recipients, bounce blocks, or the text as one reply."""
    if not text or not text.strip():
        return []
    lowered = text.lower()
    if "delivery-status" in lowered:
        try:
            replies = dsn_from_mime(text)
        except Exception:  # malformed MIME: fall back to reading the field blocks as text
            replies = []
        if replies:
            return replies
    if "final-recipient:" in lowered or "original-recipient:" in lowered:
        replies = dsn_from_text(text)
        if replies:
            return replies
    if "@" in text and "\n" in text.strip():
        # Imported here: its MTA layouts compile their patterns at import, which a single
        # reply such as "550 5.7.26" never needs (explain start-up, issue 17).
        from smtpcli.codes.bounce_text import text_replies

        replies = text_replies(text)
        if replies:
            return replies
    reply = parse_reply(text)
    return [reply] if reply else []
