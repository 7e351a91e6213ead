"""Domain statistics fitted on a bundle's training data flag foreign images and off-topic questions."""

import csv
import json

import torch

from tests.conftest import FOREIGN_IMAGES
from vqa_cli.backends.bundle import BundleEngine
from vqa_cli.io.media import load_media
from vqa_cli.store import bundle as bundles


def test_statistics_are_small_saved_and_flag_what_is_foreign(domain_bundle, shapes_data):
    config = json.loads((domain_bundle / "config.json").read_text())
    assert set(config["domain"]) == {"image_threshold", "question_threshold", "description"}
    assert (domain_bundle / "domain.safetensors").stat().st_size < 1_000_000
    engine = BundleEngine(bundles.load(str(domain_bundle)), "cpu", torch.float32)
    scenes = [load_media(str(p)) for p in sorted((shapes_data / "images").glob("*.png"))[:6]]
    foreign = [load_media(str(p)) for p in FOREIGN_IMAGES if p.stem in ("photo", "screenshot")]  # obviously foreign
    with open(shapes_data / "questions.csv", newline="") as f:
        asked = [row["question"] for row in csv.DictReader(f)]
    questions = [asked[0], asked[-1], "is there a dog?", "what is the capital of france?"]
    index = [i for i in range(8) for _ in questions]
    answers = engine.answer(engine.encode_images(scenes + foreign), questions * 8, index)
    by_image = {i: a.image_in_domain for a, i in zip(answers, index)}
    assert [by_image[i] for i in range(8)] == [True] * 6 + [False] * 2
    first = answers[: len(questions)]
    assert [a.question_in_domain for a in first] == [True, True, False, False]
