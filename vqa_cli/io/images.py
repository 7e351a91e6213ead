"""Decode image bytes as upright 8-bit RGB (io/media.py finds the bytes).

Pillow reads only the header on open, so a decompression bomb is refused from its
declared size before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings

from ..errors import ImageError, env_limit

# Pillow warns (on stderr, several lines) about corrupt EXIF, odd chunks and deprecated formats while
# decoding; what matters to a user is whether the image decodes, and that becomes an answer or an error.
warnings.filterwarnings("ignore", module=r"PIL(\.|$)")

MAX_PIXELS = 50_000_000  # 50 MP: larger than any camera photo we expect; VQA_MAX_PIXELS overrides it
BYTES_PER_PIXEL = 4  # the decoded-bytes budget per allowed pixel: 8-bit RGBA, as Pillow holds RGB too


def decode_image(data: bytes, name: str):
    """Decode an image file's bytes into a PIL RGB image, upright per its EXIF; `name` is for messages.

    Whatever Pillow raises for these bytes becomes this image's ImageError: one bad image
    never takes down the rest of a batch or a server.
    """
    from PIL import Image, ImageOps

    limit = env_limit("VQA_MAX_PIXELS", MAX_PIXELS)
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(image, name, limit)
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
    except MemoryError:
        raise ImageError(f"image too large: {name} does not fit in memory") from None
    except Exception as e:  # truncated or corrupt data, malformed EXIF, a plugin's own error
        raise ImageError(f"cannot decode image {name}: {_reason(e)}") from None


def image_pixels(data: bytes) -> int:
    """Pixels the image in `data` declares in its header (nothing is decoded); 0 when Pillow cannot tell."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return width * height
    except Exception:  # not an image: decoding it will say so, as this image's error
        return 0


def _check_size(image, name: str, limit: int) -> None:
    """Refuse from the header alone: more pixels than `limit`, or more decoded bytes than their budget."""
    from PIL import Image

    width, height = image.size
    pixels = width * height
    if pixels > limit:
        raise ImageError(
            f"image too large: {name} is {width}x{height} ({pixels / 1e6:.0f} MP, "
            f"limit {limit / 1e6:.0f} MP; raise VQA_MAX_PIXELS to allow it)"
        )
    depth = 2 if image.mode.startswith("I;16") else 4 if image.mode in ("I", "F") else 1
    decoded = pixels * max(Image.getmodebands(image.mode), 1) * depth
    if decoded > limit * BYTES_PER_PIXEL:
        raise ImageError(
            f"image too large: {name} decodes to {decoded / 1e6:.0f} MB ({image.mode}), "
            f"more than the {limit * BYTES_PER_PIXEL / 1e6:.0f} MB its pixel limit allows (VQA_MAX_PIXELS)"
        )


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def to_rgb(image):
    """Any Pillow mode -> 8-bit RGB. Transparency is flattened onto white; 16-bit and float
    images are scaled to 8 bits instead of clipped."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        values = np.asarray(image)  # uint16, int32 or float32: no wider copy than the image itself
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values * np.float32(255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
