"""The one media loader: every kind of source gives the same image; what cannot be read is refused, never waited on."""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqa_cli.errors import EXIT_USAGE, ImageError, UsageError
from vqa_cli.io.media import image_path, is_uri, load_media, read_bytes


class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


@pytest.fixture
def png(tmp_path) -> Path:
    """A small noisy RGB PNG: every pixel differs, so any mix-up of channels or rows shows."""
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(path)
    return path


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


def test_path_bytes_pil_and_stdin_give_the_same_rgb_image(png, monkeypatch):
    expected = np.asarray(Image.open(png).convert("RGB"))
    assert expected.shape == (12, 20, 3)
    data = png.read_bytes()
    with Image.open(png) as opened:
        opened.load()
        pil = opened.copy()
    monkeypatch.setattr(sys, "stdin", FakeStdin(data))
    for source in (str(png), png, data, bytearray(data), memoryview(data), pil, "-"):
        np.testing.assert_array_equal(pixels(load_media(source)), expected, err_msg=f"source {type(source).__name__}")


def test_a_pil_image_in_another_mode_becomes_rgb():
    out = load_media(Image.new("L", (5, 4), 77))
    assert out.mode == "RGB" and out.size == (5, 4) and out.getpixel((0, 0)) == (77, 77, 77)


def test_a_uri_is_read_through_fsspec(png):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/test-media/noise.png", png.read_bytes())
    try:
        np.testing.assert_array_equal(pixels(load_media("memory://test-media/noise.png")), np.asarray(Image.open(png).convert("RGB")))
        with pytest.raises(ImageError, match="not found"):
            load_media("memory://test-media/missing.png")
    finally:
        fs.rm("/test-media", recursive=True)


def test_empty_stdin_is_an_error(monkeypatch):
    monkeypatch.setattr(sys, "stdin", FakeStdin(b""))
    with pytest.raises(ImageError, match="no image data on stdin"):
        load_media("-")


def test_other_sources_are_refused_in_one_line():
    with pytest.raises(ImageError, match="cannot read an image from a list") as error:
        load_media([1, 2, 3])
    assert "\n" not in str(error.value)


def run_with_timeout(fn, seconds: float = 5.0):
    """fn's exception (or None), failing the test if fn is still running after `seconds`."""
    outcome = {}

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), outcome.get("error")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    blocked, error = run_with_timeout(lambda: load_media(str(fifo)))
    if blocked:  # let the stuck reader go: a writer that opens and closes gives it end of file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not blocked, "reading a FIFO blocked instead of being refused"
    assert isinstance(error, ImageError) and "not a regular file" in str(error)


def test_a_device_is_refused_without_reading_it():
    blocked, error = run_with_timeout(lambda: read_bytes("/dev/zero"))
    assert not blocked, "reading /dev/zero did not stop"
    assert isinstance(error, ImageError) and "not a regular file" in str(error)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ImageError, match="is a directory"):
        load_media(str(tmp_path))


def test_vqa_max_bytes_caps_files_and_stdin(png, monkeypatch):
    data = png.read_bytes()
    monkeypatch.setenv("VQA_MAX_BYTES", "100")
    assert len(data) > 100
    with pytest.raises(ImageError, match="too large") as error:
        load_media(str(png))
    assert "VQA_MAX_BYTES" in str(error.value)  # says how to allow it
    monkeypatch.setattr(sys, "stdin", FakeStdin(data))
    with pytest.raises(ImageError, match="too large"):
        load_media("-")


def test_vqa_max_bytes_lets_a_file_of_exactly_that_size_through(png, monkeypatch):
    size = png.stat().st_size
    monkeypatch.setenv("VQA_MAX_BYTES", str(size))
    assert read_bytes(str(png)) == png.read_bytes()
    monkeypatch.setattr(sys, "stdin", FakeStdin(png.read_bytes()))
    assert read_bytes("-") == png.read_bytes()
    monkeypatch.setenv("VQA_MAX_BYTES", str(size - 1))
    with pytest.raises(ImageError, match="too large"):
        read_bytes(str(png))


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_malformed_vqa_max_bytes_is_a_usage_error(png, monkeypatch, value):
    monkeypatch.setenv("VQA_MAX_BYTES", value)
    with pytest.raises(UsageError, match="VQA_MAX_BYTES") as error:
        load_media(str(png))
    assert error.value.exit_code == EXIT_USAGE == 2
    monkeypatch.setattr(sys, "stdin", FakeStdin(png.read_bytes()))
    with pytest.raises(UsageError):
        load_media("-")


def test_is_uri():
    for uri in ("s3://bucket/key.png", "gs://b/k", "file:///tmp/a.png", "memory://x", "https://example.com/a.png"):
        assert is_uri(uri), uri
    for not_uri in ("a.png", "/abs/a.png", "images/a.png", "-", "c:/images/a.png", "a:b.png"):
        assert not is_uri(not_uri), not_uri


def test_image_path_joins_relative_names_to_the_root(tmp_path):
    assert image_path("a.png", tmp_path) == str(tmp_path / "a.png")
    assert image_path("sub/a.png", str(tmp_path)) == str(tmp_path / "sub" / "a.png")
    assert image_path("a.png", "s3://bucket/images") == "s3://bucket/images/a.png"
    assert image_path("sub/a.png", "s3://bucket/images/") == "s3://bucket/images/sub/a.png"


def test_image_path_keeps_absolute_paths_uris_and_stdin(tmp_path):
    absolute = str(tmp_path / "elsewhere" / "a.png")
    for root in (tmp_path, "s3://bucket/images"):
        assert image_path(absolute, root) == absolute
        assert image_path("gs://other/b.png", root) == "gs://other/b.png"
        assert image_path("-", root) == "-"
