"""How well a bundle's domain guard tells its own world from everything else, on inputs training never saw.

    python bench/domain_guard.py [--model shapes] [--scenes 300] [--images-from DIR ...]

In domain (should be kept):   fresh Shapes scenes (seed 31337), the same scenes saved as JPEG
                              at quality 85, resized to 384 px, and converted to WebP, BMP and
                              GIF; template questions on those scenes; the held-out rewordings
                              (`vqa synth --paraphrase`).
Out of domain (should be flagged): every image under tests/data and under --images-from
                              (real photos, charts, icons and screenshots found on this
                              machine), and the off-topic questions listed in tests/conftest.py.
Also: `vqa batch` rows/s with the guard against the same bundle without its statistics,
interleaved, on 1000 rows.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import DATA, OFF_TOPIC  # noqa: E402
from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.run.batch import BatchOptions, run  # noqa: E402
from vqa_cli.shapes.paraphrase import paraphrase  # noqa: E402
from vqa_cli.shapes.questions import ask  # noqa: E402
from vqa_cli.shapes.render import render  # noqa: E402
from vqa_cli.shapes.synth import scene_rng, synthesize  # noqa: E402
from vqa_cli.shapes.world import sample_scene  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def variants(image):
    """The ways an in-domain image may arrive: as rendered, JPEG 85, 384 px, and other formats."""
    from PIL import Image

    def through(fmt, **kw):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **kw)
        return load_media(buffer.getvalue(), "x")

    return {
        "png": image, "jpeg q85": through("JPEG", quality=85), "384 px": image.resize((384, 384), Image.Resampling.BICUBIC),
        "webp": through("WEBP", quality=90), "bmp": through("BMP"), "gif": through("GIF"),
    }


def judged(engine, images: list, questions: list[str]) -> tuple[list[bool], list[bool]]:
    """(image in domain per image, question in domain per question): each question asked of the first image."""
    image_flags = []
    for start in range(0, len(images), 32):
        chunk = images[start : start + 32]
        answers = engine.answer(engine.encode_images(chunk), ["what?"] * len(chunk), list(range(len(chunk))))
        image_flags += [a.image_in_domain for a in answers]
    embeds = engine.encode_images(images[:1])
    question_flags = []
    for start in range(0, len(questions), 64):
        part = questions[start : start + 64]
        question_flags += [a.question_in_domain for a in engine.answer(embeds, part, [0] * len(part))]
    return image_flags, question_flags


def share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} = {sum(flags) / max(len(flags), 1):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--images-from", nargs="*", default=[], type=Path)
    args = parser.parse_args()
    import torch

    from vqa_cli.backends.bundle import BundleEngine
    from vqa_cli.store import bundle as bundles

    bundle = bundles.load(args.model)
    engine = BundleEngine(bundle, "cpu", torch.float32)
    scenes, templates, reworded = [], [], []
    for i in range(args.scenes):
        rng = scene_rng(31337, i)
        scene = sample_scene(rng)
        scenes.append(render(scene))
        for q in ask(scene, 4, rng):
            templates.append(q.question)
            reworded.append(paraphrase(q.question, q.family, random.Random(f"{i}-{q.question}")))
    print(f"model {bundle.name}: {bundle.domain.description if bundle.domain else 'no domain statistics'}")
    for name in ("png", "jpeg q85", "384 px", "webp", "bmp", "gif"):
        flags, _ = judged(engine, [variants(s)[name] for s in scenes], [])
        print(f"fresh scenes, {name:9s}: in domain {share(flags)}")
    _, template_flags = judged(engine, scenes[:1], templates)
    _, reworded_flags = judged(engine, scenes[:1], reworded)
    _, off_flags = judged(engine, scenes[:1], OFF_TOPIC)
    print(f"template questions      : in domain {share(template_flags)}")
    print(f"held-out rewordings     : in domain {share(reworded_flags)}")
    print(f"off-topic questions     : out of domain {share([not f for f in off_flags])}")
    foreign = sorted(p for folder in [DATA, *args.images_from] for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    pictures, names = [], []
    for path in foreign:
        try:
            pictures.append(load_media(str(path)))
            names.append(path)
        except Exception:  # an unreadable file found on the machine is not a measurement
            continue
    flags, _ = judged(engine, pictures, [])
    print(f"real images ({len(pictures)})        : out of domain {share([not f for f in flags])}")
    for path, flag in zip(names, flags):
        if flag:
            print(f"  kept as in domain: {path}")
    print(f"vqa batch with the guard vs without: {throughput(bundle):.3f} (ratio of rows/s, median of 5)")


def throughput(bundle) -> float:
    import torch

    from vqa_cli.backends.bundle import BundleEngine

    guarded = BundleEngine(bundle, "cpu", torch.float32)
    plain = BundleEngine(type(bundle)(bundle.path, bundle.model, bundle.tokenizer, bundle.preprocessing, bundle.config, None), "cpu", torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), 100, 10, seed=4321)
        data = str(Path(tmp) / "questions.csv")

        def rate(engine) -> float:
            engine.clear_cache()
            start = time.perf_counter()
            summary = run(lambda: engine, BatchOptions(input=data), lambda record: None)
            return summary.answered / (time.perf_counter() - start)

        rate(guarded)
        ratios = [rate(guarded) / rate(plain) for _ in range(5)]
    return statistics.median(ratios)


if __name__ == "__main__":
    main()
