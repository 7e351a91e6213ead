"""`vqa ask` through a warm server against a cold `vqa ask`, and questions per second under load.

    python bench/serve_latency.py [--runs 7] [--clients 16] [--requests 10] [--model shapes]

1. Starts `vqa serve` once, then runs, interleaved --runs times, a cold `vqa ask` (a new
   process that loads torch, transformers and the model) and the same `vqa ask` with
   VQA_SERVER set (a new process that imports no torch and asks the warm server). Prints
   the medians and their ratio.
2. --clients threads each send --requests /v1/ask requests (one sample scene, 3 questions)
   at once; prints questions answered per second over the whole burst.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "what shape is the red object?"
QUESTIONS = ["what shape is the red object?", "how many objects are there?", "is there a blue circle?"]


def vqa() -> str:
    return str(Path(sys.executable).parent / "vqa")


def wall(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VQA_DEVICE": "cpu"}
    env.pop("VQA_SERVER", None)
    server = subprocess.Popen([vqa(), "serve", "-m", args.model, "--port", str(port)], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while "vqa: serving" not in server.stderr.readline():
            if server.poll() is not None:
                raise SystemExit("vqa serve did not start")
        ask = [vqa(), "ask", "-m", args.model, "samples/scene_1.png", QUESTION]
        cold, warm = [], []
        wall(ask, {**env, "VQA_SERVER": url})  # the server's first request warms its caches
        for _ in range(args.runs):
            cold.append(wall(ask, env))
            warm.append(wall(ask, {**env, "VQA_SERVER": url}))
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"cold vqa ask          : {c:.3f} s median (runs: {', '.join(f'{x:.3f}' for x in cold)})")
        print(f"vqa ask via the server: {w:.3f} s median (runs: {', '.join(f'{x:.3f}' for x in warm)})")
        print(f"ratio                 : 1/{c / w:.1f}  (target: at most 1/10; goal 1/20)")
        print(f"{args.clients} clients x {args.requests} requests x {len(QUESTIONS)} questions: {burst(url, args):.1f} questions/s")
    finally:
        server.terminate()
        server.wait(timeout=60)


def burst(url: str, args) -> float:
    image = base64.b64encode((ROOT / "samples" / "scene_1.png").read_bytes()).decode()
    body = json.dumps({"image": image, "questions": QUESTIONS, "model": args.model}).encode()

    def client(_):
        for _ in range(args.requests):
            request = urllib.request.Request(f"{url}/v1/ask", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                assert len(json.loads(response.read())["answers"]) == len(QUESTIONS)

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    return args.clients * args.requests * len(QUESTIONS) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
