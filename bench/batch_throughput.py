"""Throughput of `vqa batch`'s engine against a naive per-question loop, in one process.

    python bench/batch_throughput.py [--images 100] [--questions 10] [--repeats 3]

Both sides answer the same rows (generated Shapes scenes) with the builtin model on CPU:
  engine: vqa_cli.batch.run, which decodes each image once in a background thread, encodes
          it once and fuses all its questions in batches;
  naive:  for each row, decode the image, encode it and answer that one question, as the
          Hugging Face pipelines do.
Prints rows per second for each (median of the repeats, alternating) and their ratio.
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

from vqa_cli.store import bundle as bundles  # noqa: E402
from vqa_cli.run.batch import BatchOptions, run  # noqa: E402
from vqa_cli.backends.bundle import BundleEngine  # noqa: E402
from vqa_cli.io.images import open_image  # noqa: E402
from vqa_cli.io.records import read_rows  # noqa: E402
from vqa_cli.shapes.synth import synthesize  # noqa: E402


def engine_rate(engine: Engine, data: Path, batch_size: int) -> float:
    answers = []
    start = time.perf_counter()
    summary = run(lambda: engine, BatchOptions(input=str(data), batch_size=batch_size), answers.append)
    elapsed = time.perf_counter() - start
    assert summary.failed == 0 and len(answers) == summary.answered
    return summary.answered / elapsed


def naive_rate(engine: Engine, data: Path) -> float:
    rows = list(read_rows(str(data)))
    start = time.perf_counter()
    for row in rows:
        image = open_image(str(data.parent / row["image"]))
        engine.answer(engine.encode_images([image]), [row["question"]])
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        n = synthesize(Path(tmp), args.images, args.questions, seed=12345)
        data = Path(tmp) / "questions.csv"
        engine = Engine(bundles.load("shapes", "cpu"), "cpu", torch.float32)
        engine_rate(engine, data, args.batch_size)  # warm-up
        fast, slow = [], []
        for _ in range(args.repeats):
            fast.append(engine_rate(engine, data, args.batch_size))
            slow.append(naive_rate(engine, data))
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"rows: {n} ({args.images} images x {args.questions} questions), batch size {args.batch_size}")
    print(f"vqa batch engine : {f:8.1f} rows/s  (runs: {', '.join(f'{x:.1f}' for x in fast)})")
    print(f"naive loop       : {s:8.1f} rows/s  (runs: {', '.join(f'{x:.1f}' for x in slow)})")
    print(f"ratio            : {f / s:8.2f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
