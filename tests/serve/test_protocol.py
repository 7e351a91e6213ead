"""The wire format: image bytes from base64 or data: URLs, never from a path or URL."""

from __future__ import annotations

import base64

import pytest


def test_raw_base64_of_a_jpeg_is_an_image_not_a_path():
    import io

    from PIL import Image

    from vqa_cli.serve.protocol import APIError, image_bytes

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buffer, format="JPEG")
    text = base64.b64encode(buffer.getvalue()).decode()
    assert text.startswith("/9j/") and image_bytes(text) == buffer.getvalue()
    for path in ("/etc/passwd", "./x.png", "file:///etc/passwd", "~/.ssh/id_rsa"):
        with pytest.raises(APIError, match="never fetched or opened"):
            image_bytes(path)


def test_data_urls_must_be_base64():
    from vqa_cli.serve.protocol import APIError, image_bytes

    assert image_bytes("data:image/png;base64," + base64.b64encode(b"abc").decode()) == b"abc"
    for bad in ("data:image/png,abc", "data:image/png;base64,", "not base64 at all!"):
        with pytest.raises(APIError):
            image_bytes(bad)
