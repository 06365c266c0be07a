"""Pictures in replies: what a picture is, and the limits a platform puts on one.

The type is read from the picture's first bytes, never from its name. Each publisher
that can post pictures states its limits; a reply with a picture is checked against
them before anything is sent, and a source that cannot post pictures says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from socialcare.bot.errors import DomainError

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
MB = 1024 * 1024


@dataclass(frozen=True)
class Picture:
    """An image to publish with a reply."""

    filename: str
    content: bytes

    @property
    def content_type(self) -> str | None:
        """Return the image type its bytes show (None: not a picture we know)."""
        return sniff(self.content)


@dataclass(frozen=True)
class PictureLimits:
    """What a platform takes: the largest file, the types, the longest caption."""

    max_bytes: int
    types: tuple[str, ...] = ("image/png", "image/jpeg")
    max_caption: int | None = None


def sniff(content: bytes) -> str | None:
    """Return the image type of the bytes, by their signature (WebP too)."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if content.startswith(magic)), None)


def check_picture(picture: Picture, text: str, limits: PictureLimits, *, source: str) -> None:
    """Refuse a picture (or its caption) the platform would not take, saying why."""
    kind = picture.content_type
    if kind is None or kind not in limits.types:
        raise DomainError(f"{source} takes {', '.join(limits.types)} pictures.",
                          key="error.picture_type", source=source,
                          types=", ".join(t.removeprefix("image/") for t in limits.types))
    if len(picture.content) > limits.max_bytes:
        raise DomainError(f"The picture is larger than {source} takes.",
                          key="error.picture_too_big", source=source,
                          size=f"{len(picture.content) / MB:.1f}",
                          limit=f"{limits.max_bytes / MB:.0f}")
    if limits.max_caption is not None and len(text) > limits.max_caption:
        raise DomainError(f"{source} takes captions up to {limits.max_caption} characters.",
                          key="error.caption_too_long", source=source,
                          limit=limits.max_caption, length=len(text))
