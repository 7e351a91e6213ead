"""The shipped Shapes bundle: accuracy on fresh scenes, and explanations that point at the right object."""

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vqa_cli.cli import app
from vqa_cli.run.evaluate import evaluate
from vqa_cli.backends.registry import load_engine
from vqa_cli.shapes.faithfulness import peak_hit_rate
from vqa_cli.shapes.synth import synthesize

FRESH_SEED = 777_777  # never used for training (the training set is seed 1)


@pytest.fixture(scope="module")
def engine():
    return load_engine("shapes", "cpu", torch.float32)


def test_shipped_bundle_answers_fresh_questions(engine, tmp_path):
    """Guards the shipped weights on 1,000 questions from a seed never used in training: >= 95% on every family.

    1,000, not 300: with 30 questions a family, two misses already fall below 95% (compare
    was 28/30 on the first 300 of this seed, against 99.0% on the 2,000-question test set).
    """
    synthesize(tmp_path, images=100, questions_per_image=10, seed=FRESH_SEED)
    report = evaluate(lambda: engine, str(tmp_path / "questions.csv"))
    assert report["rows"] == 1000 and report["failed"] == 0
    assert report["accuracy"] >= 0.97, report
    for family, result in report["families"].items():
        assert result["accuracy"] >= 0.95, (family, result)


def test_shipped_bundle_compares_descriptions_absent_on_both_sides(engine):
    """The blind spot an independent check found: "are there more green squares than purple circles?" with
    neither in the scene must be "no" (equal counts). Asked of fresh scenes, every pair absent on both sides."""
    import random

    from vqa_cli.shapes.render import render
    from vqa_cli.shapes.synth import scene_rng
    from vqa_cli.shapes.world import ALL_DESCRIPTIONS, sample_scene

    rng = random.Random(5)
    images, questions, index = [], [], []
    for i in range(40):
        scene = sample_scene(scene_rng(FRESH_SEED + 1, i))
        absent = [d for d in ALL_DESCRIPTIONS if d.count(scene) == 0]
        images.append(render(scene))
        for _ in range(5):
            a, b = rng.sample(absent, 2)
            questions.append(f"are there more {a.text(plural=True)} than {b.text(plural=True)}?")
            index.append(i)
    answers = engine.answer(engine.encode_images(images), questions, index)
    wrong = [(q, a.answer) for q, a in zip(questions, answers) if a.answer != "no"]
    assert len(wrong) <= 0.02 * len(questions), wrong[:10]


def test_shipped_bundle_answers_questions_drawn_uniformly_from_the_spec(engine, tmp_path):
    """Descriptions drawn uniformly from all the spec allows, present or not: >= 97% on every family."""
    synthesize(tmp_path, images=60, questions_per_image=10, seed=FRESH_SEED + 2, sampling="uniform")
    report = evaluate(lambda: engine, str(tmp_path / "questions.csv"))
    assert report["rows"] == 600 and report["accuracy"] >= 0.98, report
    for family, result in report["families"].items():
        assert result["accuracy"] >= 0.95, (family, result)


def test_shipped_bundle_knows_its_domain(engine):
    """Fresh scenes, also as JPEG, are in; the real photo, chart, icon and screenshot under tests/data are out."""
    import io

    from tests.conftest import FOREIGN_IMAGES, OFF_TOPIC
    from vqa_cli.io.media import load_media
    from vqa_cli.shapes.render import render
    from vqa_cli.shapes.synth import scene_rng
    from vqa_cli.shapes.world import sample_scene

    scenes = [render(sample_scene(scene_rng(FRESH_SEED, i))) for i in range(8)]
    jpegs = []
    for scene in scenes:
        buffer = io.BytesIO()
        scene.save(buffer, format="JPEG", quality=85)
        jpegs.append(load_media(buffer.getvalue(), "x"))
    images = scenes + jpegs + [load_media(str(p)) for p in FOREIGN_IMAGES]
    answers = engine.answer(engine.encode_images(images), ["what?"] * len(images), list(range(len(images))))
    assert [a.image_in_domain for a in answers] == [True] * 16 + [False] * len(FOREIGN_IMAGES)
    judged = engine.answer(engine.encode_images(scenes[:1]), ["what color is the large circle?", "which colour is the little triangle?", *OFF_TOPIC])
    assert [a.question_in_domain for a in judged[:2]] == [True, True]
    assert sum(not a.question_in_domain for a in judged[2:]) >= 0.9 * len(OFF_TOPIC)  # the guard's goal for off-topic questions


def test_explanations_peak_on_the_referenced_object(engine):
    rate, records = peak_hit_rate(engine, scenes=50)
    assert rate >= 0.80, [r for r in records if not r["hit"]]


def test_explain_writes_one_png_per_question_at_the_image_size(tmp_path):
    out = tmp_path / "why.png"
    result = CliRunner().invoke(
        app,
        ["ask", "--json", "samples/scene_1.png", "what shape is the red object?", "what size is the square?", "--explain", str(out)],
    )
    assert result.exit_code == 0, result.output
    for n in (1, 2):
        with Image.open(tmp_path / f"why-{n}.png") as image:
            assert image.size == (256, 256)
    doc = json.loads(result.stdout)
    attention = doc["answers"][0]["attention"]
    h, w = attention["grid"]
    assert (h, w) == (len(attention["map"]), len(attention["map"][0]))
    values = [v for row in attention["map"] for v in row]
    assert min(values) >= 0.0 and max(values) == 1.0
