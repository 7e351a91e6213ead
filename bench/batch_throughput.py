"""Throughput of `vqa batch`'s answering stream against a naive per-question loop, in one process.

    python bench/batch_throughput.py [--repeats 3] [--model shapes]

Two workloads of generated Shapes scenes, each answered both ways with the same model on CPU:
  (a) 100 scenes x 10 questions each (mostly distinct questions);
  (b) 1,000 scenes x the same 3 questions (what batch files usually look like).
  stream: vqa_cli.run.batch.run, which decodes each image once in a background thread,
          encodes it once, fuses its questions in batches and encodes each distinct
          question once per process (the question cache);
  naive:  for each row, decode the image, encode it and answer that one question, with no
          question cache, as the Hugging Face pipelines do.
Prints rows per second for each (median of the repeats, alternating) and their ratio, and
for (a) where the stream's time goes: decode, image encoder, text encoder, head.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqa_cli.backends.bundle import BundleEngine  # noqa: E402
from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.io.records import read_rows  # noqa: E402
from vqa_cli.run.batch import BatchOptions, run  # noqa: E402
from vqa_cli.shapes.synth import synthesize  # noqa: E402
from vqa_cli.store import bundle as bundles  # noqa: E402

SAME_QUESTIONS = ("how many objects are there?", "what color is the large circle?", "is there a red square?")


def stream_rate(engine, data: Path, batch_size: int) -> float:
    engine.clear_cache()  # each repeat starts cold: the cache fills within the run
    answers = []
    start = time.perf_counter()
    summary = run(lambda: engine, BatchOptions(input=str(data), batch_size=batch_size), answers.append)
    elapsed = time.perf_counter() - start
    assert summary.failed == 0 and len(answers) == summary.answered
    return summary.answered / elapsed


def naive_rate(engine, data: Path) -> float:
    rows = list(read_rows(str(data)))
    start = time.perf_counter()
    for row in rows:
        image = load_media(str(data.parent / row["image"]))
        engine.answer(engine.encode_images([image]), [row["question"]])
    return len(rows) / (time.perf_counter() - start)


def same_questions(folder: Path, images: int) -> Path:
    """Workload (b): every scene asked the same three questions."""
    synthesize(folder, images, 1, seed=54321)
    path = folder / "same.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("image", "question"))
        for i in range(images):
            writer.writerows((f"images/scene_{i:06d}.png", q) for q in SAME_QUESTIONS)
    return path


def breakdown(engine, data: Path, batch_size: int) -> dict[str, float]:
    """Seconds per stage for the stream's own batching: decode, image encoder, text encoder, head."""
    import torch

    rows = list(read_rows(str(data)))
    model, pre = engine.model, engine.bundle.preprocessing
    times = dict.fromkeys(("decode", "image encoder", "text encoder", "head"), 0.0)
    names = list(dict.fromkeys(r["image"] for r in rows))
    questions = list(dict.fromkeys(r["question"] for r in rows))
    with torch.inference_mode():
        t = time.perf_counter()
        images = {n: load_media(str(data.parent / n)) for n in names}
        times["decode"] = time.perf_counter() - t
        embeds = {}
        for start in range(0, len(names), batch_size):
            chunk = names[start : start + batch_size]
            t = time.perf_counter()
            features, grid = model.image_encoder(pre.pixels([images[n] for n in chunk]))
            times["image encoder"] += time.perf_counter() - t
            t = time.perf_counter()
            embeds[start] = model.head.encode_image(features, grid)
            times["head"] += time.perf_counter() - t
        t = time.perf_counter()
        for start in range(0, len(questions), batch_size):
            tokens = pre.tokenize(engine.bundle.tokenizer, questions[start : start + batch_size])
            model.text_features(tokens["input_ids"], tokens["attention_mask"])
        times["text encoder"] = time.perf_counter() - t
        engine.clear_cache()
        engine.question_features(questions)  # fills the cache, so the fusion below is timed alone
        t = time.perf_counter()
        for start in range(0, len(names), batch_size):
            chunk = set(names[start : start + batch_size])
            members = [r for r in rows if r["image"] in chunk]
            local = {n: i for i, n in enumerate(names[start : start + batch_size])}
            for first in range(0, len(members), batch_size):
                part = members[first : first + batch_size]
                text, mask = engine.question_features([r["question"] for r in part])
                index = torch.tensor([local[r["image"]] for r in part])
                model.answer(text, mask, embeds[start], index)
        times["head"] += time.perf_counter() - t
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}", file=sys.stderr)
    bundle = bundles.load(args.model, "cpu")
    engine = BundleEngine(bundle, "cpu", torch.float32)
    naive = BundleEngine(bundle, "cpu", torch.float32, cache_bytes=0)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp) / "a", 100, 10, seed=12345)
        workloads = {"(a) 100 scenes x 10 questions": Path(tmp) / "a" / "questions.csv",
                     "(b) 1000 scenes x the same 3 questions": same_questions(Path(tmp) / "b", 1000)}
        stream_rate(engine, workloads["(a) 100 scenes x 10 questions"], args.batch_size)  # warm-up
        for name, data in workloads.items():
            fast, slow = [], []
            for _ in range(args.repeats):
                fast.append(stream_rate(engine, data, args.batch_size))
                slow.append(naive_rate(naive, data))
            f, s = statistics.median(fast), statistics.median(slow)
            print(f"{name}: {sum(1 for _ in read_rows(str(data)))} rows, batch size {args.batch_size}")
            print(f"  answering stream : {f:8.1f} rows/s  (runs: {', '.join(f'{x:.1f}' for x in fast)})")
            print(f"  naive loop       : {s:8.1f} rows/s  (runs: {', '.join(f'{x:.1f}' for x in slow)})")
            print(f"  ratio            : {f / s:8.2f}x")
        times = breakdown(engine, workloads["(a) 100 scenes x 10 questions"], args.batch_size)
    total = sum(times.values())
    print("where the stream's time goes on (a), stage by stage:")
    for stage, seconds in times.items():
        print(f"  {stage:14s} {seconds:6.3f} s  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
