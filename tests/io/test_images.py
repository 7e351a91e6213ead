import io
import zlib

import numpy as np
import pytest
from PIL import Image

from vqa_cli.errors import ImageError
from vqa_cli.io.media import load_media


def save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return str(path)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(image, tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_media(path).size == (20, 40)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "LA", "1"])
def test_modes_become_rgb(tmp_path, mode):
    image = Image.new("RGB", (8, 8), (200, 30, 30)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    path = save(image, tmp_path / f"img.{fmt.lower()}", format=fmt)
    out = load_media(path)
    assert out.mode == "RGB" and out.size == (8, 8)


def test_transparency_is_flattened_onto_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_media(save(image, tmp_path / "clear.png")).getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.full((6, 6), 32768, dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    pixel = load_media(save(image, tmp_path / "deep.png")).getpixel((0, 0))
    assert 120 <= pixel[0] <= 135 and pixel[0] == pixel[1] == pixel[2]


def test_animated_image_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    r, g, b = load_media(str(path)).getpixel((5, 5))
    assert r > 200 and b < 50


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_MAX_PIXELS", "10000")
    path = save(Image.new("L", (200, 200)), tmp_path / "big.png")
    with pytest.raises(ImageError, match="too large"):
        load_media(path)


def test_huge_declared_size_is_refused_without_decoding(tmp_path):
    # A PNG header claiming 100000 x 100000 pixels followed by garbage: refused before any decode.
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # keep the IHDR chunk valid
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="too large"):
        load_media(str(path))


@pytest.mark.parametrize(
    "content, message",
    [(None, "not found"), (b"hello, not an image", "not an image"), (b"\x89PNG\r\n\x1a\n\x00\x00", "image")],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "file.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as error:
        load_media(str(path))
    assert "\n" not in str(error.value)


def test_truncated_image_is_an_error(tmp_path):
    full = tmp_path / "full.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:300])
    with pytest.raises(ImageError):
        load_media(str(cut))
