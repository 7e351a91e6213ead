"""Seeded fuzzing of what users send: malformed images, rows and requests, through ask, batch and the server.

Every input must end as an answer or a one-line error (an error record in a batch, a 4xx from
the server): no traceback, one record per row, the documented exit codes, and a server that
still answers afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import struct

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from vqa_cli.cli import app

SEED = 20261202
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA", "PCX", "SGI", "IM", "DDS", "QOI")


def image_bytes(fmt: str, size=(24, 16), mode="RGB") -> bytes:
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # Pillow's notes about formats it deprecates
        warnings.simplefilter("ignore")
        Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 128).save(buffer, format=fmt)
    return buffer.getvalue()


def saveable_formats() -> list[str]:
    found = []
    for fmt in FORMATS:
        try:
            image_bytes(fmt)
            found.append(fmt)
        except (KeyError, OSError, ValueError):
            continue
    return found


def bad_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block claims more entries than it holds (struct.error in older EXIF parsers)."""
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 0xFFFF) + b"\x01\x12\x00\x03"
    body = image_bytes("JPEG")
    return body[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + body[2:]


def malformed_images(rng: random.Random) -> dict[str, bytes]:
    """name -> bytes: every format truncated, with flipped bytes and a broken header; plus odd cases."""
    cases = {}
    for fmt in saveable_formats():
        good = image_bytes(fmt)
        flipped = bytearray(good)
        for _ in range(max(3, len(good) // 50)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        cases[f"{fmt}-truncated"] = good[: max(1, len(good) // 3)]
        cases[f"{fmt}-flipped"] = bytes(flipped)
        cases[f"{fmt}-header"] = bytes(rng.randrange(256) for _ in range(16)) + good[16:]
    cases["jpeg-bad-exif"] = bad_exif_jpeg()
    cases["empty"] = b""
    cases["random"] = bytes(rng.randrange(256) for _ in range(4096))
    cases["png-16bit"] = image_bytes("PNG", mode="I;16")
    return cases


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory):
    rng = random.Random(SEED)
    root = tmp_path_factory.mktemp("fuzz")
    names = []
    for name, data in malformed_images(rng).items():
        (root / name).write_bytes(data)
        names.append(name)
    os.mkfifo(root / "fifo")
    (root / "folder").mkdir()
    names += ["fifo", "folder", "/dev/zero", "missing.png"]
    return root, names


def test_every_malformed_image_is_one_error_record_in_a_batch(fuzz_files, tiny_bundle, scene_png):
    root, names = fuzz_files
    rows = [{"image": name, "question": "what color is the circle?"} for name in names]
    rows.insert(len(rows) // 2, {"image": str(scene_png), "question": "is there a red square?"})
    (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["batch", str(root / "rows.jsonl"), "-m", str(tiny_bundle)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(records) == len(rows) and [r["id"] for r in records] == list(range(1, len(rows) + 1))
    good = records[len(rows) // 2]
    assert good["error"] is None and good["answer"] is not None  # the one good row among them is answered
    for record in records:
        assert record["error"] is None or (record["answer"] is None and "\n" not in record["error"])


def test_malformed_images_through_ask_are_one_line_and_exit_1(fuzz_files, tiny_bundle):
    root, names = fuzz_files
    rng = random.Random(SEED)
    for name in rng.sample([n for n in names if n != "png-16bit"], 8) + ["fifo", "/dev/zero"]:
        path = name if name.startswith("/") else str(root / name)
        result = CliRunner().invoke(app, ["ask", path, "what color is the circle?", "-m", str(tiny_bundle)])
        if result.exit_code == 0:  # a flipped byte can leave a decodable image: then it is answered
            assert result.stdout.strip()
            continue
        assert result.exit_code == 1, (name, result.output)
        assert result.stderr.startswith("vqa: error:") and result.stderr.count("\n") == 1, (name, result.stderr)


def odd_rows(rng: random.Random) -> list[bytes]:
    lines = [
        b'{"image": "a.png", "question": "lone \\ud800"}',
        b'{"image": "a\xff\xfe.png", "question": "invalid utf-8"}',
        b'["not", "an", "object"]',
        b"12345",
        b'{"image": 5, "question": {"nested": true}}',
        b'{"image": null, "question": null}',
        b'{"image": "a.png", "question": "' + b"x" * 2_000_000 + b'"}',
        b"{truncated",
        b'{"image": "a.png", "question": "\\u0000"}',
        bytes(rng.randrange(256) for _ in range(200)).replace(b"\n", b" "),
    ]
    return lines


def test_odd_rows_each_give_one_record_and_the_run_goes_on(tiny_bundle, scene_png, tmp_path):
    rng = random.Random(SEED)
    good = json.dumps({"image": str(scene_png), "question": "is there a red square?"}).encode()
    lines = odd_rows(rng)
    data = b"\n".join(lines[:5] + [good] + lines[5:]) + b"\n"
    path = tmp_path / "rows.jsonl"
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["batch", str(path), "-m", str(tiny_bundle)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(records) == len(lines) + 1 and records[5]["error"] is None and records[5]["answer"]
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(b"image,question\n" + b"a\xff.png,q\n" + f"{scene_png},".encode() + b"y" * 300_000 + b"\n"
                         + f"{scene_png},is there a red square?\n".encode())
    result = CliRunner().invoke(app, ["batch", str(csv_path), "-m", str(tiny_bundle)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3 and records[0]["error"].startswith("line 2") and records[2]["answer"]


def odd_requests(rng: random.Random, good_image: str) -> list[tuple[str, dict]]:
    return [
        ("/v1/ask", {"image": good_image, "questions": ["lone \ud800"]}),
        ("/v1/ask", {"image": "not base64!!", "questions": ["q"]}),
        ("/v1/ask", {"image": base64.b64encode(bytes(rng.randrange(256) for _ in range(300))).decode(), "questions": ["q"]}),
        ("/v1/ask", {"image": good_image, "questions": []}),
        ("/v1/ask", {"image": good_image, "questions": "not a list"}),
        ("/v1/ask", {"image": "/etc/passwd", "questions": ["q"]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}),
        ("/v1/chat/completions", {"messages": "nope"}),
        ("/v1/answer", {"images": [good_image], "questions": ["q"], "image_index": [3]}),
    ]


@pytest.fixture(scope="module")
def server(tiny_bundle):
    from tests.serve.conftest import start

    process, url, _ = start(tiny_bundle)
    yield url
    process.terminate()
    process.wait(timeout=60)


def test_odd_requests_get_4xx_and_the_server_still_answers(server, scene_png):
    url = server
    good_image = base64.b64encode(scene_png.read_bytes()).decode()
    for path, body in odd_requests(random.Random(SEED), good_image):
        text = json.dumps(body)  # lone surrogates travel as \ud800 escapes, as a client's JSON would send them
        response = httpx.post(f"{url}{path}", content=text, headers={"Content-Type": "application/json"}, timeout=60)
        assert 400 <= response.status_code < 500, (path, body if len(text) < 300 else text[:300], response.text)
        assert "error" in response.json()
    tolerated = httpx.post(f"{url}/v1/ask", json={"image": base64.b64encode(bad_exif_jpeg()).decode(), "questions": ["q"]}, timeout=60)
    assert tolerated.status_code in (200, 400)  # Pillow may read past a broken EXIF block; never a 500
    answered = httpx.post(f"{url}/v1/ask", json={"image": good_image, "questions": ["is there a red square?"]}, timeout=60)
    assert answered.status_code == 200 and answered.json()["answers"][0]["answer"]
