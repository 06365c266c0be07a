"""Small previews of pictures (the saved replies' pictograms in the console), drawn with
Pillow. CPU work: callers run it in a worker thread, off the event loop."""

from __future__ import annotations

import io

# The longest side of a preview, in pixels.
THUMBNAIL_SIDE = 160


def thumbnail_png(content: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """Return a PNG of the picture scaled down to fit `side` × `side` (never enlarged)."""
    from PIL import Image  # loaded with the first preview

    with Image.open(io.BytesIO(content)) as image:
        image.thumbnail((side, side))
        # PNG keeps transparency; palette and CMYK pictures are written as RGBA.
        shown = image if image.mode in ("RGB", "RGBA", "L", "LA") else image.convert("RGBA")
        out = io.BytesIO()
        shown.save(out, format="PNG", optimize=True)
    return out.getvalue()
