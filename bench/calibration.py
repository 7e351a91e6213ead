"""Are the builtin model's scores honest? Expected calibration error and a reliability table.

    python bench/calibration.py [--scenes 1000] [--questions 10] [--seed 11] [--sampling uniform]

Renders fresh Shapes scenes (a seed the model never trained on) with --questions questions
each, answers them twice with the builtin model, and compares each answer's score with how
often such answers are right:
  open      the answer over the whole vocabulary, score = its probability
  choices   the answer among its family's answer set (every answer the family has in this
            data, as `--choices` would list them), score = its probability over the set
The expected calibration error (ECE) is the mean |accuracy - confidence| over 10 equal-width
bins of confidence, weighted by the answers in each bin. Prints the ECE overall and per
family for both, and the 10-bin reliability table of the open answers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqa_cli.backends.registry import load_engine  # noqa: E402
from vqa_cli.run.stream import Request, answer_stream  # noqa: E402
from vqa_cli.shapes.questions import ask  # noqa: E402
from vqa_cli.shapes.render import render  # noqa: E402
from vqa_cli.shapes.synth import scene_rng  # noqa: E402
from vqa_cli.shapes.world import sample_scene  # noqa: E402

BINS = 10


def calibration(pairs: list[tuple[float, bool]]) -> tuple[float, list[tuple[int, float, float]]]:
    """(ECE, [(answers, mean confidence, accuracy)] per bin) of (confidence, correct) pairs."""
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(BINS)]
    for confidence, correct in pairs:
        bins[min(int(confidence * BINS), BINS - 1)].append((confidence, correct))
    table = [(len(b), sum(c for c, _ in b) / len(b), sum(ok for _, ok in b) / len(b)) if b else (0, 0.0, 0.0) for b in bins]
    ece = sum(n * abs(accuracy - confidence) for n, confidence, accuracy in table) / max(len(pairs), 1)
    return ece, table


def answered(engine, rows: list[tuple[str, str, str, str]], choices: dict[str, tuple[str, ...]] | None) -> list[tuple[str, float, bool]]:
    """(family, score, correct) for each (image, question, answer, family) row."""
    requests = [Request(image, q, data=(gold, family), choices=choices[family] if choices else None) for image, q, gold, family in rows]
    out = []
    for window in answer_stream(lambda: engine, requests, batch_size=256):
        for request, answer in window:
            gold, family = request.data
            out.append((family, answer.score, answer.answer == gold))
    return out


def report(name: str, results: list[tuple[str, float, bool]]) -> list[tuple[int, float, float]]:
    ece, table = calibration([(s, ok) for _, s, ok in results])
    accuracy = sum(ok for _, _, ok in results) / len(results)
    confidence = sum(s for _, s, _ in results) / len(results)
    print(f"{name}: {len(results)} answers, accuracy {accuracy:.4f}, mean confidence {confidence:.4f}, ECE {ece:.4f}")
    families = defaultdict(list)
    for family, s, ok in results:
        families[family].append((s, ok))
    print("  per family: " + ", ".join(f"{f} {calibration(p)[0]:.4f}" for f, p in sorted(families.items())))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sampling", default="uniform", choices=("balanced", "uniform"))
    args = parser.parse_args()
    engine = load_engine("shapes", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in range(args.scenes):
            rng = scene_rng(args.seed, n)
            scene = sample_scene(rng)
            path = str(Path(tmp) / f"{n}.png")
            render(scene).save(path)
            rows += [(path, q.question, q.answer, q.family) for q in ask(scene, args.questions, rng, args.sampling)]
        answer_sets: dict[str, set[str]] = defaultdict(set)
        for _, _, gold, family in rows:
            answer_sets[family].add(gold)
        choices = {family: tuple(sorted(answers)) for family, answers in answer_sets.items()}
        print(f"{args.scenes} scenes x {args.questions} questions, seed {args.seed}, {args.sampling} sampling")
        print("answer sets: " + "; ".join(f"{f} {len(c)}" for f, c in sorted(choices.items())))
        table = report("open vocabulary", answered(engine, rows, None))
        report("--choices of the family's answer set", answered(engine, rows, choices))
    print("\nreliability (open vocabulary):\n| confidence | answers | mean confidence | accuracy |\n|---|---|---|---|")
    for k, (n, confidence, accuracy) in enumerate(table):
        print(f"| {k / BINS:.1f}-{(k + 1) / BINS:.1f} | {n} | {confidence:.4f} | {accuracy:.4f} |" if n else f"| {k / BINS:.1f}-{(k + 1) / BINS:.1f} | 0 | | |")


if __name__ == "__main__":
    main()
