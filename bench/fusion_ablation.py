"""The fusion strategies side by side: accuracy per family, parameters, speed, and whether --explain works.

    python bench/fusion_ablation.py BUNDLE... --data data/shapes-fusion-test/questions.csv [--repeats 5]

For each bundle (trained with `vqa train --fusion ...`, see models/shapes/README.md):
  accuracy   `vqa eval` on DATA, overall and per family
  params     trainable parameters: the head (of it, the fusion) plus the image encoder trained with it
  trained    minutes to the best validation, from the bundle's provenance
  ask        a new process's work after start-up: load, decode a sample, answer one question (median)
  batch      the answering stream over 1000 rows (100 fresh scenes x 10 questions), rows/s (median)
  explain    whether `--explain` draws a map, or the one-line error it gives
The speed figures are interleaved, bundle after bundle, in one process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_speed import ROOT, interleaved_speeds  # noqa: E402

from vqa_cli.errors import VQAError  # noqa: E402
from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.run.evaluate import evaluate  # noqa: E402
from vqa_cli.run.stream import answer_image  # noqa: E402
from vqa_cli.store import bundle as bundles  # noqa: E402
from vqa_cli.backends.registry import load_engine  # noqa: E402


def parameters(engine) -> tuple[int, int]:
    """(fusion, everything trained) parameter counts."""
    model = engine.model
    trained = sum(p.numel() for p in model.head.parameters())
    if bundles.read_config(engine.bundle.path)["image_encoder"].get("trained"):
        trained += sum(p.numel() for p in model.image_encoder.parameters())
    return sum(p.numel() for p in model.head.fusion.parameters()), trained


def explains(engine) -> str:
    try:
        answer_image(engine, load_media(str(ROOT / "samples" / "scene_1.png")), ["what shape is the red object?"], explain=True)
        return "yes"
    except VQAError as e:
        return f"no: {e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", required=True, help="labelled rows to score (a fresh `vqa synth` set)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    engines = {name: load_engine(name, "cpu", torch.float32) for name in args.bundles}
    results = {name: evaluate(lambda e=engine: e, args.data) for name, engine in engines.items()}
    asks, rates = interleaved_speeds(engines, args.repeats)
    families = sorted({f for r in results.values() for f in r["families"]})
    print("| fusion | overall | " + " | ".join(families) + " | fusion params | trained params | trained (min) | ask (s) | batch (rows/s) | --explain |")
    print("|---" * (len(families) + 8) + "|")
    for name, engine in engines.items():
        config = bundles.read_config(engine.bundle.path)
        fusion_params, trained = parameters(engine)
        minutes = config["provenance"].get("validation", {}).get("minutes")  # bundles before 2026-12-01 lack it
        cells = [f"{results[name]['families'][f]['accuracy']:.1%}" for f in families]
        print(f"| {config['head'].get('fusion', 'cross')} ({name}) | {results[name]['accuracy']:.2%} | " + " | ".join(cells)
              + f" | {fusion_params / 1e3:.0f}k | {trained / 1e6:.2f}M | {'-' if minutes is None else f'{minutes:.1f}'} | {statistics.median(asks[name]):.3f}"
              f" | {statistics.median(rates[name]):.1f} | {explains(engine)} |")


if __name__ == "__main__":
    main()
