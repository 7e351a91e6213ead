"""The CLI through a server: the same stdout as a local run, no torch on the client, and no silent fallback."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from tests.serve.conftest import vqa_command


def run(*args, server: str | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("VQA_SERVER", None)
    if server:
        env["VQA_SERVER"] = server
    return subprocess.run([vqa_command(), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_ask_through_the_server_prints_exactly_what_a_local_run_prints(server, tiny_bundle, scene_png):
    url, _ = server
    for args in (["ask", "-m", tiny_bundle, scene_png, "what color is the circle?", "is there a red square?"],
                 ["ask", "--json", "--top-k", "3", "-m", tiny_bundle, scene_png, "what color is the circle?", "how many objects are there?"]):
        local, remote = run(*args), run(*args, server=url)
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert remote.stdout == local.stdout


def test_batch_through_the_server_writes_exactly_the_local_records(server, tiny_bundle, scene_png, tmp_path):
    url, _ = server
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("id", "image", "question", "note"))
        for n in range(40):
            writer.writerow((n, scene_png if n % 7 else "missing.png", ["what color is the circle?", "is there a red square?", ""][n % 3], f"n{n}"))
    args = ["batch", rows, "-m", tiny_bundle, "--top-k", "2", "--batch-size", "8"]
    local, remote = run(*args), run(*args, server=url)
    assert local.returncode == remote.returncode == 1  # the bad rows fail, on both
    assert remote.stdout == local.stdout and remote.stdout.count("\n") == 40


def test_the_client_path_imports_neither_torch_nor_transformers(server, tiny_bundle, scene_png):
    url, _ = server
    code = (
        "import sys; from vqa_cli.cli import app\n"
        f"try: app(['ask', '--server', {url!r}, '-m', {str(tiny_bundle)!r}, {str(scene_png)!r}, 'what?'])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_server_that_is_not_there_is_one_line_and_exit_1(scene_png):
    result = run("ask", scene_png, "what?", server="http://127.0.0.1:9")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "http://127.0.0.1:9" in result.stderr


def test_explain_is_refused_through_a_server(server, tiny_bundle, scene_png, tmp_path):
    url, _ = server
    result = run("ask", "-m", tiny_bundle, scene_png, "what?", "--explain", tmp_path / "x.png", server=url)
    assert result.returncode == 1 and "--explain" in result.stderr and result.stderr.count("\n") == 1


def test_a_malformed_server_url_is_a_usage_error(scene_png):
    for url in ("notaurl", "http://", "ftp://host:1"):
        result = run("ask", scene_png, "what?", server=url)
        assert result.returncode == 2 and "must be an http:// or https:// URL" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1


def test_a_server_that_answers_unexpected_json_is_one_line(scene_png):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Odd(BaseHTTPRequestHandler):
        def reply(self):
            body = b'{"status": "ok"}' if self.path == "/health" else b'{"answers": "nope"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = reply

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = run("ask", scene_png, "what?", server=f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
    assert result.returncode == 1 and "is not a vqa server's answer" in result.stderr and result.stderr.count("\n") == 1


def test_calls_are_split_to_fit_the_server_and_give_the_local_records(small_server, tiny_bundle, tmp_path):
    """--batch-size 100 over images whose bytes and pixels need several requests; two images too large for any."""
    from tests.serve.test_app import png_bytes

    url, limits = small_server
    paths = []
    for n, (width, height, seed) in enumerate([(160, 120, n) for n in range(8)] + [(600, 400, None), (330, 300, 99)]):
        path = tmp_path / f"image{n}.png"
        path.write_bytes(png_bytes(width, height, seed))  # noise: 8 x 80 KB of base64 need several requests
        paths.append(path)
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("image", "question"))
        for path in paths:
            for question in ("what color is the circle?", "is there a red square?", "how many objects are there?"):
                writer.writerow((path, question))
    args = ["batch", rows, "-m", tiny_bundle, "--top-k", "2", "--batch-size", "100"]
    local, remote = run(*args), run(*args, server=url)
    assert local.returncode == 0 and remote.returncode == 1, remote.stderr
    local_lines, remote_lines = local.stdout.splitlines(), remote.stdout.splitlines()
    assert remote_lines[:24] == local_lines[:24]  # the images that fit: exactly the local records
    too_large = [json.loads(line) for line in remote_lines[24:]]
    assert len(too_large) == 6 and all("too large to send to the server" in r["error"] for r in too_large)


def test_a_9_mp_photo_through_the_server_gives_the_local_answers(server, tiny_bundle, scene_png, tmp_path):
    """A noisy 3000x3000 photo: about 27 MB as base64 PNG, within one request."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(scene_png).convert("RGB").resize((3000, 3000), Image.BICUBIC)).astype(np.int16)
    noisy = np.clip(pixels + np.random.default_rng(0).normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
    photo = tmp_path / "photo.png"
    Image.fromarray(noisy).save(photo)
    args = ["ask", "--json", "--top-k", "3", "-m", tiny_bundle, photo, "what color is the circle?", "how many objects are there?"]
    local, remote = run(*args), run(*args, server=server[0])
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stdout.replace(str(photo), "") == local.stdout.replace(str(photo), "")


def test_generation_options_reach_the_server_and_give_the_local_answers(vlm_server, scene_png):
    url, folder = vlm_server
    for options in (["--max-tokens", "3"], ["--instruction", "", "--max-tokens", "5", "--top-k", "2"],
                    ["--temperature", "1.2", "--seed", "5", "--max-tokens", "4"]):
        args = ["ask", "--json", "-m", folder, scene_png, "what color is the circle?", "is there a red square?", *options]
        local, remote = run(*args), run(*args, server=url)
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout)["answers"] == json.loads(local.stdout)["answers"]


def test_generation_options_for_a_served_classifier_are_a_usage_error(server, tiny_bundle, scene_png):
    result = run("ask", "-m", tiny_bundle, scene_png, "what?", "--max-tokens", "3", server=server[0])
    assert result.returncode == 2 and "cannot take --instruction" in result.stderr and result.stderr.count("\n") == 1


def test_choices_through_the_server_give_the_local_records(server, tiny_bundle, scene_png, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in [
        {"image": str(scene_png), "question": "what color is the circle?", "choices": "red|blue"},
        {"image": str(scene_png), "question": "is there a red square?"},
        {"image": str(scene_png), "question": "is there a red square?", "choices": ["yes", "not-an-answer"]},
    ]))
    args = ["batch", rows, "-m", tiny_bundle, "--choices", "yes,no"]
    local, remote = run(*args), run(*args, server=server[0])
    assert local.returncode == remote.returncode == 1  # the unknown choice fails its row, on both
    assert remote.stdout == local.stdout and "'not-an-answer'" in remote.stdout
