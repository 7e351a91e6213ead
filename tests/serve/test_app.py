"""The HTTP API on a real server: OpenAI shapes, the answers a local run gives, and every security rule."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from typer.testing import CliRunner

from tests.serve.conftest import KEY, vqa_command
from vqa_cli.cli import app

QUESTIONS = ["what color is the circle?", "is there a red square?", "how many objects are there?"]


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def local_document(tiny_bundle, image, questions, top_k=1) -> dict:
    result = CliRunner().invoke(app, ["ask", "--json", "--top-k", str(top_k), "-m", str(tiny_bundle), str(image), *questions])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_same_answers(served: list[dict], local: list[dict]) -> None:
    """The same answers; scores equal up to float summation order (requests may share a forward pass)."""
    assert [a["answer"] for a in served] == [a["answer"] for a in local]
    for s, l in zip(served, local):
        assert [r["answer"] for r in s["top_k"]] == [r["answer"] for r in l["top_k"]]
        assert s["score"] == pytest.approx(l["score"], rel=1e-4, abs=1e-6)


def test_health_models_and_the_ready_line(server):
    url, line = server
    assert line.startswith("vqa: serving ") and line.strip().endswith(url)
    assert httpx.get(f"{url}/health").status_code == 200
    listed = httpx.get(f"{url}/v1/models").json()
    assert listed["object"] == "list" and listed["data"][0]["object"] == "model"
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/health", "/v1/models", "/v1/ask", "/v1/chat/completions"} <= set(paths)


def test_ask_returns_the_ask_document_with_no_image(server, tiny_bundle, scene_png):
    url, _ = server
    served = httpx.post(f"{url}/v1/ask", json={"image": b64(scene_png), "questions": QUESTIONS, "top_k": 3}).json()
    local = local_document(tiny_bundle, scene_png, QUESTIONS, top_k=3)
    assert served["image"] is None and {k: v for k, v in served.items() if k not in ("image", "answers")} == {
        k: v for k, v in local.items() if k not in ("image", "answers")}
    assert_same_answers(served["answers"], local["answers"])


def test_openai_client_chat_completions_with_logprobs(server, tiny_bundle, scene_png):
    from openai import OpenAI

    url, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    data_url = f"data:image/png;base64,{b64(scene_png)}"
    response = client.chat.completions.create(
        model=client.models.list().data[0].id,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": QUESTIONS[0]}, {"type": "text", "text": QUESTIONS[1]},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]}],
        logprobs=True, top_logprobs=2,
    )
    local = local_document(tiny_bundle, scene_png, QUESTIONS[:2], top_k=2)["answers"]
    assert response.choices[0].message.content == "\n".join(a["answer"] for a in local)
    tokens = [t for t in response.choices[0].logprobs.content if t.token != "\n"]
    assert [t.token for t in tokens] == [a["answer"] for a in local]
    assert [len(t.top_logprobs) for t in tokens] == [2, 2]
    assert tokens[0].top_logprobs[0].logprob >= tokens[0].top_logprobs[1].logprob


def test_sixteen_concurrent_clients_get_the_answers_of_a_local_run(server, tiny_bundle, scene_png, tmp_path):
    from PIL import Image

    url, _ = server
    images = []
    for n in range(4):  # four different images, so batches mix images
        path = tmp_path / f"s{n}.png"
        Image.open(scene_png).rotate(90 * n).save(path)
        images.append(path)
    local = {n: local_document(tiny_bundle, images[n], QUESTIONS)["answers"] for n in range(4)}

    def ask(n):
        return n % 4, httpx.post(f"{url}/v1/ask", json={"image": b64(images[n % 4]), "questions": QUESTIONS}, timeout=60).json()

    with ThreadPoolExecutor(16) as pool:
        for n, document in pool.map(ask, range(16)):
            assert_same_answers(document["answers"], local[n])


@pytest.mark.parametrize("image", ["http://{host}/x.png", "https://{host}/x.png", "file:///etc/passwd", "/etc/passwd", "./x.png"])
def test_urls_and_paths_are_refused_and_never_fetched(server, image):
    url, _ = server
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    response = httpx.post(f"{url}/v1/ask", json={"image": image.format(host=host), "questions": ["what?"]})
    assert response.status_code == 400 and "never fetched" in response.json()["error"]["message"]
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody came to fetch it
    listener.close()
    chat = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": image.format(host=host)}}]}]})
    assert chat.status_code == 400


@pytest.mark.parametrize("body, status, words", [
    ({"image": "not base64!!", "questions": ["what?"]}, 400, "base64"),
    ({"image": base64.b64encode(b"plain text").decode(), "questions": ["what?"]}, 400, "not an image"),
    ({"image": "data:image/png,abc", "questions": ["what?"]}, 400, "base64"),
    ({"image": "AAAA", "questions": []}, 400, "no questions"),
    ({"image": "AAAA", "questions": ["q?"] * 65}, 400, "too many questions"),
    ({"image": "AAAA", "questions": ["   "]}, 400, "empty question"),
    ({"image": "AAAA", "questions": ["what?"], "model": "../../etc"}, 404, "not served here"),
    ({"questions": ["what?"]}, 400, "image"),
])
def test_bad_requests_get_openai_shaped_errors_and_the_server_lives_on(server, body, status, words):
    url, _ = server
    response = httpx.post(f"{url}/v1/ask", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and set(error) == {"message", "type", "code"} and "Traceback" not in response.text
    assert httpx.get(f"{url}/health").status_code == 200


def test_malformed_json_oversized_bodies_and_unknown_routes(server):
    url, _ = server
    assert httpx.post(f"{url}/v1/ask", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    big = httpx.post(f"{url}/v1/ask", content=b"x" * (32 * 1024 * 1024 + 1), headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    missing = httpx.get(f"{url}/v1/nothing")
    assert missing.status_code == 404 and "error" in missing.json()


def test_foreign_host_headers_are_refused(server):
    url, _ = server
    assert httpx.get(f"{url}/health", headers={"Host": "attacker.example:8765"}).status_code == 403
    assert httpx.get(f"{url}/health", headers={"Host": "localhost"}).status_code == 200


def test_with_a_key_everything_but_health_needs_it(keyed_server, scene_png):
    url = keyed_server
    body = {"image": b64(scene_png), "questions": ["what?"]}
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/v1/models").status_code == 401
    wrong = httpx.post(f"{url}/v1/ask", json=body, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert httpx.post(f"{url}/v1/ask", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    remote = {"Authorization": f"Bearer {KEY}", "Host": "vqa-box.example:8765"}  # a client using the machine's name
    assert httpx.get(f"{url}/v1/models", headers=remote).status_code == 200


def test_binding_beyond_loopback_needs_a_key(tiny_bundle):
    result = subprocess.run([vqa_command(), "serve", "-m", str(tiny_bundle), "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "without an API key" in result.stderr


def test_sigterm_stops_cleanly_after_the_request_in_flight(tiny_bundle, scene_png):
    from tests.serve.conftest import start

    process, url, _ = start(tiny_bundle)
    results = []
    worker = threading.Thread(target=lambda: results.append(httpx.post(
        f"{url}/v1/ask", json={"image": b64(scene_png), "questions": QUESTIONS * 20}, timeout=60)))  # 60 questions
    worker.start()
    time.sleep(1.0)  # the request has been read by now: it is being answered, or waits for the model
    process.terminate()
    worker.join()
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
    assert "Traceback" not in process.stderr.read()
    assert results and results[0].status_code == 200 and len(results[0].json()["answers"]) == 60


def test_host_names_are_compared_without_case(server):
    url, _ = server
    assert httpx.get(f"{url}/health", headers={"Host": "LOCALHOST:1"}).status_code == 200
    assert httpx.get(f"{url}/health", headers={"Host": "Attacker.Example"}).status_code == 403


def png_bytes(width: int, height: int, seed: int | None = None) -> bytes:
    """A flat PNG (a few hundred bytes), or with a seed a noise PNG, whose size follows its pixels."""
    import io
    import random

    from PIL import Image

    if seed is None:
        image = Image.new("RGB", (width, height), (200, 30, 30))
    else:
        rng = random.Random(seed)
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_half_open_connections_are_closed_and_cannot_lock_clients_out(small_server):
    url, limits = small_server
    port = int(url.rsplit(":", 1)[1])
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(limits.max_connections)]
    for s in stalled:
        s.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers that never end
    time.sleep(0.1)
    assert httpx.get(f"{url}/health").status_code == 503  # every connection is taken
    time.sleep(limits.header_timeout * 3)
    for s in stalled:
        s.settimeout(1)
        assert s.recv(1) == b""  # the server closed it
        s.close()
    assert httpx.get(f"{url}/health").status_code == 200


def test_chunked_bodies_over_the_limit_get_413(small_server):
    url, limits = small_server

    def chunks():
        for _ in range(limits.max_body // 10_000 + 2):
            yield b"x" * 10_000

    response = httpx.post(f"{url}/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert httpx.get(f"{url}/health").status_code == 200


def test_images_over_the_pixel_budget_get_413_before_decoding(small_server):
    url, limits = small_server
    image = base64.b64encode(png_bytes(500, 500)).decode()  # 0.25 MP, over the 0.2 MP a request may hold
    response = httpx.post(f"{url}/v1/ask", json={"image": image, "questions": ["what?"]})
    assert response.status_code == 413 and "MP" in response.json()["error"]["message"]
    two = [base64.b64encode(png_bytes(330, 330)).decode()] * 2  # each fits, together they do not
    response = httpx.post(f"{url}/v1/encode", json={"session": "s", "images": two})
    assert response.status_code == 413


def test_an_idle_session_is_dropped_and_the_client_sends_its_images_again(small_server, scene_png):
    from PIL import Image

    from vqa_cli.serve.client import RemoteEngine

    url, limits = small_server
    engine = RemoteEngine(url)
    ids = engine.encode_images([Image.open(scene_png).convert("RGB")])
    [before] = engine.answer(ids, ["what color is the circle?"])
    time.sleep(limits.session_idle + 0.5)
    stale = httpx.post(f"{url}/v1/answer", json={"ids": ids, "questions": ["what?"], "image_index": [0], "session": engine.session})
    assert stale.status_code == 409  # dropped for idleness
    [after] = engine.answer(ids, ["what color is the circle?"])
    assert (after.answer, after.score) == (before.answer, before.score)


def test_ask_answers_among_choices(server, scene_png):
    url, _ = server
    body = {"image": b64(scene_png), "questions": ["what color is the circle?"], "choices": ["blue", "red"]}
    answer = httpx.post(f"{url}/v1/ask", json=body).json()["answers"][0]
    assert answer["answer"] in ("red", "blue") and sum(r["score"] for r in answer["top_k"]) == pytest.approx(1, abs=1e-4)
    bad = httpx.post(f"{url}/v1/ask", json={**body, "choices": ["red", "mauve"]})
    assert bad.status_code == 400 and "'mauve'" in bad.json()["error"]["message"]


CLIP = __import__("pathlib").Path(__file__).resolve().parents[2] / "samples" / "clip.mp4"


def test_ask_takes_a_base64_video_and_answers_as_a_local_run(server, tiny_bundle):
    url, _ = server
    body = {"image": b64(CLIP), "questions": QUESTIONS[:2], "fps": 2, "end": 6}
    served = httpx.post(f"{url}/v1/ask", json=body).json()
    result = CliRunner().invoke(app, ["ask", "--json", "-m", str(tiny_bundle), str(CLIP), *QUESTIONS[:2], "--fps", "2", "--end", "6"])
    local = json.loads(result.stdout)
    assert served["video"] == local["video"] and served["video"]["sampled"] == 12
    for s, l in zip(served["answers"], local["answers"]):
        assert [f["answer"] for f in s["frames"]] == [f["answer"] for f in l["frames"]]
        assert s["segments"] == l["segments"] and s["answer"] == l["answer"]
    bad = httpx.post(f"{url}/v1/ask", json={**body, "fps": 0})
    assert bad.status_code == 400 and "--fps must be a positive number" in bad.json()["error"]["message"]


def test_a_video_whose_sampled_frames_exceed_the_pixel_budget_gets_413_before_decoding(small_server):
    url, limits = small_server  # 0.2 MP per request: four 256x256 frames are 0.26 MP
    body = {"image": b64(CLIP), "questions": ["what?"], "max_frames": 4}
    response = httpx.post(f"{url}/v1/ask", json=body)
    assert response.status_code == 413 and "max_frames" in response.json()["error"]["message"]
    assert httpx.post(f"{url}/v1/ask", json={**body, "max_frames": 2}).status_code == 200


def test_chat_takes_a_video_url_data_url(server):
    url, _ = server
    part = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + b64(CLIP)}}
    body = {"messages": [{"role": "user", "content": [part, {"type": "text", "text": "what color is the circle?"}]}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
