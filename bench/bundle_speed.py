"""Two bundles side by side: `vqa ask` latency, `vqa batch` throughput and size, interleaved in one process.

    python bench/bundle_speed.py OLD_BUNDLE NEW_BUNDLE [--repeats 5]

ask:   a new process's work after start-up: load the bundle, decode one sample image,
       encode it and answer one question (median over repeats).
batch: the answering stream over 1000 rows (100 fresh scenes x 10 questions), rows/s.
Prints each and the ratio new / old.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.run.batch import BatchOptions, run  # noqa: E402
from vqa_cli.run.stream import answer_image  # noqa: E402
from vqa_cli.shapes.synth import synthesize  # noqa: E402
from vqa_cli.store import bundle as bundles  # noqa: E402
from vqa_cli.backends.registry import load_engine  # noqa: E402


def ask_seconds(model: str) -> float:
    import torch

    start = time.perf_counter()
    engine = load_engine(model, "cpu", torch.float32)
    answer_image(engine, load_media(str(ROOT / "samples" / "scene_1.png")), ["what shape is the red object?"])
    return time.perf_counter() - start


def batch_rate(engine, data: str) -> float:
    engine.clear_cache()
    start = time.perf_counter()
    summary = run(lambda: engine, BatchOptions(input=data), lambda record: None)
    return summary.answered / (time.perf_counter() - start)


def interleaved_speeds(engines: dict, repeats: int) -> tuple[dict, dict]:
    """{name: [ask seconds]}, {name: [batch rows/s]}: each bundle in turn, `repeats` rounds, after one warm-up."""
    asks = {name: [] for name in engines}
    rates = {name: [] for name in engines}
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), 100, 10, seed=2468)
        data = str(Path(tmp) / "questions.csv")
        for name in engines:
            ask_seconds(name), batch_rate(engines[name], data)  # warm the file cache and the kernels
        for _ in range(repeats):
            for name in engines:
                asks[name].append(ask_seconds(name))
                rates[name].append(batch_rate(engines[name], data))
    return asks, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    engines = {name: load_engine(name, "cpu", torch.float32) for name in (args.old, args.new)}
    asks, rates = interleaved_speeds(engines, args.repeats)
    for name in engines:
        size = bundles.size_on_disk(bundles.find(name)) / 1e6
        print(f"{name}: ask {statistics.median(asks[name]):.3f} s, batch {statistics.median(rates[name]):.1f} rows/s, {size:.1f} MB")
    ask_ratio = statistics.median(asks[args.new]) / statistics.median(asks[args.old])
    rate_ratio = statistics.median(rates[args.new]) / statistics.median(rates[args.old])
    print(f"new / old: ask latency {ask_ratio:.2f}x, batch throughput {rate_ratio:.2f}x")


if __name__ == "__main__":
    main()
