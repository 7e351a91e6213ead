"""Open an image from a path, from bytes, or from stdin ('-'), as upright 8-bit RGB.

Pillow reads only the header on open, so a decompression bomb is refused from its
declared size before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

from ..errors import ImageError

MAX_PIXELS = int(os.environ.get("VQA_MAX_PIXELS", 50_000_000))  # 50 MP: larger than any camera photo we expect


def is_uri(name: str) -> bool:
    """s3://bucket/key, gs://..., file:///..., memory://...: opened through fsspec, never joined to a root."""
    return re.match(r"[a-zA-Z][a-zA-Z0-9+.-]+://", name) is not None


def image_path(name: str, root: Path | str) -> str:
    """Where an image named in an input file lies: URIs, absolute paths and '-' as given, others under
    root, which may itself be a URI (s3://bucket/images + a.png -> s3://bucket/images/a.png)."""
    if name == "-" or is_uri(name) or Path(name).is_absolute():
        return name
    if is_uri(str(root)):
        return str(root).rstrip("/") + "/" + name
    return str(Path(root) / name)


def read_uri(uri: str) -> bytes:
    """The bytes behind a URI, through fsspec (s3:// needs s3fs, gs:// gcsfs, as fsspec says)."""
    import fsspec

    try:
        with fsspec.open(uri, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageError(f"image not found: {uri}") from None
    except (ImportError, ValueError, OSError) as e:  # an unknown protocol, a missing fsspec backend, I/O
        raise ImageError(f"cannot read image {uri}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def read_bytes(source: str) -> bytes:
    """The raw bytes of a path, or of stdin when source is '-'."""
    if source == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise ImageError("no image data on stdin")
        return data
    if is_uri(source):
        return read_uri(source)
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"image not found: {source}") from None
    except IsADirectoryError:
        raise ImageError(f"image is a directory: {source}") from None
    except OSError as e:
        raise ImageError(f"cannot read image {source}: {e.strerror}") from None


def open_image(source: str, data: bytes | None = None):
    """Decode `source` (or `data`, when given) into a PIL RGB image, upright per its EXIF."""
    from PIL import Image, ImageOps

    if data is None:
        data = read_bytes(source)
    name = "stdin" if source == "-" else source
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"image too large: {name} is {width}x{height} ({width * height / 1e6:.0f} MP, "
                    f"limit {MAX_PIXELS / 1e6:.0f} MP; raise VQA_MAX_PIXELS to allow it)"
                )
            image.seek(0)  # the first frame of an animation
            image.load()
            upright = ImageOps.exif_transpose(image)
            return to_rgb(upright)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"image too large: {name} exceeds the decompression-bomb limit") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"not an image: {name}") from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        raise ImageError(f"cannot decode image {name}: {str(e).splitlines()[0] if str(e) else 'corrupt data'}") from None


def to_rgb(image):
    """Any Pillow mode -> 8-bit RGB. Transparency is flattened onto white; 16-bit and float
    images are scaled to 8 bits instead of clipped."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
