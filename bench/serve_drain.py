"""SIGTERM with a full queue: every request already accepted is answered before `vqa serve` exits.

    python bench/serve_drain.py [--requests 160] [--questions 64] [--model shapes]

Starts `vqa serve`, sends --requests /v1/ask requests of --questions questions each, all at
once (one connection each), waits until the server has read them (1 s), sends SIGTERM, and
reports how many were answered (200), how many failed, and the seconds from SIGTERM to exit.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_latency import vqa  # noqa: E402

QUESTIONS = ["what shape is the red object?", "how many objects are there?", "is there a blue circle?", "what color is the square?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port: int, body: bytes, results: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("POST", "/v1/ask", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        document = json.loads(response.read())
        results.append((response.status, len(document.get("answers", []))))
    except OSError as e:
        results.append((type(e).__name__, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([vqa(), "serve", "-m", args.model, "--port", str(port)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    while "vqa: serving" not in (line := server.stderr.readline()):
        if server.poll() is not None:
            sys.exit(f"vqa serve exited: {line}")
    images = sorted((ROOT / "samples").glob("scene_*.png"))
    results: list = []
    threads = []
    for n in range(args.requests):
        image = base64.b64encode(images[n % len(images)].read_bytes()).decode()
        questions = [QUESTIONS[(n + q) % len(QUESTIONS)] for q in range(args.questions)]
        body = json.dumps({"image": image, "questions": questions}).encode()
        threads.append(threading.Thread(target=send, args=(port, body, results)))
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every request has been sent and read
    answered_before = len(results)
    start = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=600)
    drained = time.perf_counter() - start
    for thread in threads:
        thread.join()
    ok = sum(1 for status, answers in results if status == 200 and answers == args.questions)
    print(f"{args.requests} requests x {args.questions} questions; {answered_before} answered before SIGTERM")
    print(f"after SIGTERM: exit {code} in {drained:.1f} s; answered in full: {ok}/{args.requests}; "
          f"failed: {[status for status, _ in results if status != 200]}")


if __name__ == "__main__":
    main()
