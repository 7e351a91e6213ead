"""The CPU path of the builtin model against the machine's limit, and the whole `vqa batch` command
against another checkout, side by side.

    python bench/cpu_path.py [--baseline /path/to/other/checkout] [--repeats 5] [--scenes 1100]

Reports, in one run:
  - the model's FLOPs per image (the image encoder and the head's image side) and per question
    (text projection, fusion and answer head, the text encoder's cost excluded: it is cached),
    from torch's FlopCounterMode;
  - the machine's fp32 matmul rate (2048^3, 2 threads) and the 48->48 3x3 conv rate;
  - the image side's achieved rate in a batch of 64, eager and as `vqa batch` runs it, and its
    share of the matmul rate;
  - the whole-process marginal rate of `vqa batch` on SCENES distinct scenes x the same 3
    questions: a 3*SCENES-row run minus a 300-row run, each a fresh `python -m vqa_cli batch`
    process, this checkout and the baseline interleaved, medians of the repeats;
  - the same rows through the answering stream inside this process, for what the whole command loses.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ("how many objects are there?", "what color is the large circle?", "is there a red square?")


def flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def timed(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_rates() -> dict:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul = 2 * 2048**3 / timed(lambda: a @ b)
    conv = torch.nn.Conv2d(48, 48, 3, padding=1).eval()
    x = torch.randn(64, 48, 32, 32)
    with torch.inference_mode():
        conv_rate = flops(lambda: conv(x)) / timed(lambda: conv(x))
    return {"matmul": matmul, "conv": conv_rate}


def model_rates(scenes: list) -> dict:
    import torch

    from vqa_cli.backends.registry import load_engine

    engine = load_engine("shapes", "cpu", "float32")
    pixels = engine.bundle.preprocessing.pixels(scenes[:64])
    model = engine.model
    with torch.inference_mode():
        per_image = flops(lambda: model.encode_image(pixels)) / len(pixels)
        embeds = model.encode_image(pixels)
        text, mask = engine.question_features(list(QUESTIONS) * 64)
        index = torch.arange(64).repeat_interleave(3)
        per_question = flops(lambda: model.answer(text, mask, embeds, index)) / len(index)
        eager = timed(lambda: model.encode_image(pixels))
        engine.encode_images(scenes[:64])  # traces the image encoder, as the first window of `vqa batch` does
        optimized = timed(lambda: model.encode_image(pixels))
    return {"per_image": per_image, "per_question": per_question, "eager": per_image * 64 / eager,
            "batch": per_image * 64 / optimized, "traced": bool(model.image_encoder.optimized and model.image_encoder.traced)}


def in_process_rate(rows: Path, repeats: int) -> float:
    """Rows/s of the answering stream in this process (`vqa batch`'s run, engine loaded and traced, cache cold)."""
    from vqa_cli.backends.registry import load_engine
    from vqa_cli.run.batch import BatchOptions, run

    engine = load_engine("shapes", "cpu", "float32")
    rates = []
    for _ in range(repeats + 1):  # the first run traces the encoder, as a process's first window does
        engine.clear_cache()
        summary = run(lambda: engine, BatchOptions(input=str(rows)), lambda record: None)
        rates.append((summary.answered + summary.failed) / summary.seconds)
    return statistics.median(rates[1:])


def workload(folder: Path, scenes: int) -> tuple[Path, Path]:
    """SCENES distinct scenes x the same 3 questions, and its first 100 scenes."""
    from vqa_cli.shapes.synth import synthesize

    synthesize(folder, scenes, 1, seed=77)
    names = sorted(p.name for p in (folder / "images").glob("*.png"))
    files = []
    for count, name in ((len(names), "rows.csv"), (100, "small.csv")):
        with open(folder / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("image", "question"))
            writer.writerows((f"images/{n}", q) for n in names[:count] for q in QUESTIONS)
        files.append(folder / name)
    return files[0], files[1]


def run_batch(checkout: Path, rows: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vqa_cli", "batch", str(rows), "-q", "-o", os.devnull], cwd=checkout, check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "VQA_DEVICE": "cpu"})
    return time.perf_counter() - start


def whole_process(checkouts: dict, big: Path, small: Path, repeats: int, rows: int) -> dict:
    """Marginal rows/s of each checkout: (rows - 300) / (t(big) - t(small)), interleaved, medians."""
    marginal = {name: [] for name in checkouts}
    for _ in range(repeats):
        for name, checkout in checkouts.items():
            t_big, t_small = run_batch(checkout, big), run_batch(checkout, small)
            marginal[name].append((rows - 300) / (t_big - t_small))
    return {name: (statistics.median(v), v) for name, v in marginal.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare the whole command with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scenes", type=int, default=1100)
    args = parser.parse_args()

    from vqa_cli.io.media import load_media

    with tempfile.TemporaryDirectory() as tmp:
        big, small = workload(Path(tmp), args.scenes)
        checkouts = {"this checkout": ROOT}
        if args.baseline:
            checkouts["baseline"] = args.baseline.resolve()
        # The whole commands first, while this process has loaded no model and runs no threads of its own.
        results = whole_process(checkouts, big, small, args.repeats, 3 * args.scenes)
        scenes = [load_media(str(p)) for p in sorted((Path(tmp) / "images").glob("*.png"))[:64]]
        machine, model = machine_rates(), model_rates(scenes)
        stream = in_process_rate(big, args.repeats)
    print(f"model: {model['per_image'] / 1e9:.3f} GFLOP per image, {model['per_question'] / 1e6:.2f} MFLOP per question")
    print(f"machine: fp32 matmul {machine['matmul'] / 1e9:.1f} GFLOP/s, 48->48 3x3 conv {machine['conv'] / 1e9:.1f} GFLOP/s")
    for label, rate in (("eager", model["eager"]), ("as vqa batch runs it", model["batch"])):
        print(f"image side, batch of 64, {label}: {rate / 1e9:.1f} GFLOP/s = {rate / machine['matmul']:.0%} of the matmul rate")
    print(f"image encoder traced for inference: {model['traced']}")
    for name, (median, runs) in results.items():
        print(f"vqa batch marginal rate, {name}: {median:.1f} rows/s (runs: {', '.join(f'{r:.1f}' for r in runs)})")
    print(f"the same rows through the answering stream in this process: {stream:.1f} rows/s "
          f"(the whole command reaches {results['this checkout'][0] / stream:.0%} of it)")
    if args.baseline:
        print(f"ratio: {results['this checkout'][0] / results['baseline'][0]:.2f}x")


if __name__ == "__main__":
    main()
