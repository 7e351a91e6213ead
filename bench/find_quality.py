"""Retrieval by question with the builtin model: precision@10 and average precision of `vqa find`'s ranking.

    python bench/find_quality.py [--scenes 1000] [--seed 2026]

Renders --scenes fresh Shapes scenes (a seed the model never trained on), then asks 20
questions "is there a [size] COLOR SHAPE?" of every scene, as `vqa find` does: the answer
among the choices yes,no, each scene scored by P(yes). The truth comes from each scene's
objects. For each question it reports precision@10 (of the 10 best-ranked scenes, how many
hold such an object) and average precision over the whole ranking; then the means and the
worst question. The scenes go through the answering stream once, all questions together,
which gives the same scores as 20 `vqa find` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqa_cli.backends.registry import load_engine  # noqa: E402
from vqa_cli.run.stream import Request, answer_stream  # noqa: E402
from vqa_cli.shapes.render import render  # noqa: E402
from vqa_cli.shapes.world import sample_scene  # noqa: E402

QUERIES = [(None, c, s) for c, s in [
    ("red", "circle"), ("red", "square"), ("red", "triangle"), ("green", "circle"), ("green", "square"),
    ("blue", "triangle"), ("blue", "circle"), ("yellow", "square"), ("yellow", "triangle"), ("purple", "circle"),
    ("purple", "square"), ("orange", "triangle"), ("orange", "circle"), ("gray", "square"), ("gray", "triangle"),
    ("cyan", "circle"), ("cyan", "square"), ("green", "triangle"),
]] + [("large", "red", "square"), ("small", "blue", "circle")]


def question(size, color, shape) -> str:
    words = f"{size + ' ' if size else ''}{color} {shape}"
    return f"is there {'an' if words[0] in 'aeiou' else 'a'} {words}?"


def holds(scene, size, color, shape) -> bool:
    return any(o.color == color and o.shape == shape and (size is None or o.size == size) for o in scene.objects)


def average_precision(ranked_truth: list[bool]) -> float:
    hits, total = 0, 0.0
    for rank, relevant in enumerate(ranked_truth, start=1):
        if relevant:
            hits += 1
            total += hits / rank
    return total / max(hits, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scenes = [sample_scene(rng) for _ in range(args.scenes)]
    engine = load_engine("shapes", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n, scene in enumerate(scenes):
            paths.append(str(Path(tmp) / f"{n}.png"))
            render(scene).save(paths[-1])
        requests = [Request(path, question(*q), data=(n, k), choices=("yes", "no"))
                    for n, path in enumerate(paths) for k, q in enumerate(QUERIES)]
        scores: dict[tuple[int, int], float] = {}
        for window in answer_stream(lambda: engine, requests, batch_size=256):
            for request, answer in window:
                scores[request.data] = next(r["score"] for r in answer.top_k if r["answer"] == "yes")
    rows = []
    for k, q in enumerate(QUERIES):
        ranking = sorted(range(len(scenes)), key=lambda n: (-scores[n, k], n))
        truth = [holds(scenes[n], *q) for n in ranking]
        rows.append((question(*q), sum(truth), sum(truth[:10]) / 10, average_precision(truth)))
    print("| question | scenes with it | precision@10 | average precision |")
    print("|---|---|---|---|")
    for text, positives, p10, ap in rows:
        print(f"| {text} | {positives} | {p10:.2f} | {ap:.4f} |")
    worst = min(rows, key=lambda r: r[3])
    print(f"\nmean precision@10 {statistics.mean(r[2] for r in rows):.3f}; mean average precision {statistics.mean(r[3] for r in rows):.4f}; "
          f"worst AP {worst[3]:.4f} ({worst[0]}); {args.scenes} scenes, seed {args.seed}")


if __name__ == "__main__":
    main()
