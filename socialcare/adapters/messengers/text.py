"""Text helpers both messengers' layouts use."""

from __future__ import annotations


def safe_url(url: str | None) -> str | None:
    """Return the URL if it is a plain web link (no markup, no other scheme), else None."""
    if url and url.startswith(("https://", "http://")) and not any(c in url for c in "<>|\" \n"):
        return url
    return None


def cut(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most `limit` characters, at a word boundary where one is near;
    say whether it was cut."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    space = head.rfind(" ", max(0, limit - 200))
    return (head[:space] if space > 0 else head).rstrip(), True
