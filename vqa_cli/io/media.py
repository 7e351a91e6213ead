"""The one media loader: what the user gave (a path, '-', a URI, bytes, a PIL image) -> decoded media.

Every front door loads through `load_media`: `vqa ask`, the batch and eval stream, the
server, the Ray engine, training and the Python API. Media is a still image (an upright
8-bit RGB PIL image, io/images.py) or a video's sampled frames (a Video, io/video.py),
told apart by the file's first bytes, never by its name.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path
from typing import Iterator

from ..errors import ImageError, env_limit
from .images import decode_image, image_pixels, to_rgb
from .video import HEAD_BYTES, Sampling, is_video, read_video, video_pixels


def load_media(source, name: str | None = None, video: Sampling | None = Sampling()):
    """Decode `source` into media: a path or URI (str or Path), '-' for stdin, image or video bytes, or a PIL image.

    `name` says what to call it in messages (default: the path, "stdin" or "image bytes").
    A video becomes its frames sampled as `video` says; with video=None a video is refused
    (training reads images only). A video file is decoded from disk as it is read, so its
    size is not limited; from stdin or a URI it is read whole, up to VQA_MAX_BYTES.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decoded(bytes(source), name or "image bytes", video)
    if isinstance(source, (str, Path)):
        source = str(source)
        name = name or ("stdin" if source == "-" else source)
        if source != "-" and not is_uri(source) and is_video(_head(source)):
            return _video(source, name, video)
        return _decoded(read_bytes(source), name, video)
    from PIL import Image

    if isinstance(source, Image.Image):  # decoded already
        return to_rgb(source)
    raise ImageError(f"cannot read an image from a {type(source).__name__}: give a path, '-', a URI, bytes or a PIL image")


def media_pixels(data: bytes, video: Sampling = Sampling()) -> int:
    """Pixels an image, or a video's sampled frames, will hold once decoded, from the header alone; 0 when unknown."""
    return video_pixels(data, video) if is_video(data[:HEAD_BYTES]) else image_pixels(data)


def _decoded(data: bytes, name: str, video: Sampling | None):
    if is_video(data[:HEAD_BYTES]):
        import io

        return _video(io.BytesIO(data), name, video)
    return decode_image(data, name)


def _video(file, name: str, video: Sampling | None):
    if video is None:
        raise ImageError(f"{name} is a video; only images are read here")
    return read_video(file, name, video)


def _head(path: str) -> bytes:
    """A regular file's first bytes, to tell a video from an image; b"" when it cannot be read (read_bytes says why)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except (OSError, ValueError):
        return b""


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                  ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")  # what a folder's files are taken for: videos too


def image_sources(sources: list[str], stdin=None) -> Iterator[str]:
    """The images (and videos) a list of sources names, lazily: files and URIs as given, each folder's
    image and video files (by suffix, recursively, sorted), and for `-` one path per line of stdin."""
    for source in sources:
        if source == "-":
            yield from (line.strip() for line in (stdin or sys.stdin) if line.strip())
        elif not is_uri(source) and Path(source).is_dir():
            yield from (str(p) for p in sorted(Path(source).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            yield source


def input_folder(source: str) -> str:
    """Where relative image paths in an input file point: its folder, or its URI's "folder"; stdin: here."""
    if source == "-":
        return str(Path.cwd())
    if is_uri(source):
        return source.rsplit("/", 1)[0] + "/"
    return str(Path(source).parent)


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


MAX_BYTES = 256 * 2**20  # bytes read for one image, from a file, a URI or stdin; VQA_MAX_BYTES overrides it


def read_uri(uri: str) -> bytes:
    """The bytes behind a URI, through fsspec (s3:// needs s3fs, gs:// gcsfs, as fsspec says)."""
    import fsspec

    try:
        with fsspec.open(uri, "rb") as f:
            return _read_limited(f, uri)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"image not found: {uri}") from None
    except Exception as e:  # an unknown protocol, a missing fsspec backend, I/O, a backend's own error
        raise ImageError(f"cannot read image {uri}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def read_bytes(source: str) -> bytes:
    """The raw bytes of a regular file, a URI, or stdin when source is '-', at most VQA_MAX_BYTES of them.

    A FIFO, a device or a socket is refused without being opened, so it can neither hang a
    run nor feed it without end.
    """
    if source == "-":
        data = _read_limited(sys.stdin.buffer, "stdin")
        if not data:
            raise ImageError("no image data on stdin")
        return data
    if is_uri(source):
        return read_uri(source)
    try:
        info = os.stat(source)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"image is a directory: {source}")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"image is not a regular file: {source}")
        _check_length(info.st_size, source)
        with open(source, "rb") as f:
            return _read_limited(f, source)
    except FileNotFoundError:
        raise ImageError(f"image not found: {source}") from None
    except (OSError, ValueError) as e:  # permissions, I/O, a name the OS cannot take (NUL bytes)
        raise ImageError(f"cannot read image {source}: {getattr(e, 'strerror', None) or e}") from None


def _read_limited(f, name: str) -> bytes:
    limit = env_limit("VQA_MAX_BYTES", MAX_BYTES)
    data = f.read(limit + 1)
    _check_length(len(data), name, limit)
    return data


def _check_length(size: int, name: str, limit: int | None = None) -> None:
    limit = limit or env_limit("VQA_MAX_BYTES", MAX_BYTES)
    if size > limit:
        raise ImageError(f"image too large: {name} is over {limit / 2**20:.0f} MB (raise VQA_MAX_BYTES to allow it)")
