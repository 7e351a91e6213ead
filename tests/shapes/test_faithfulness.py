"""The explanation-faithfulness check: its questions are about the right object, and its records add up."""

from __future__ import annotations

import re

import pytest

from vqa_cli.shapes.faithfulness import ATTRIBUTE, RELATIONAL, _question, peak_hit_rate
from vqa_cli.shapes.questions import RELATION_MARGIN, related_object
from vqa_cli.shapes.synth import scene_rng
from vqa_cli.shapes.world import COLORS, IMAGE_SIZE, SIZES, Description, Scene, ShapeObject, sample_scene

RELATION = re.compile(r"what (color|shape) is the object (closest to|furthest from) the (.+)\?")
ATTRIBUTE_QUESTION = re.compile(r"what (color|shape) is the (.+)\?")


def parse(text: str) -> Description:
    """'large red square' -> Description('large', 'red', 'square')."""
    *words, noun = text.split()
    size = next((w for w in words if w in SIZES), None)
    color = next((w for w in words if w in COLORS), None)
    assert len(words) == (size is not None) + (color is not None), text
    return Description(size, color, noun)


def the_one(scene: Scene, desc: Description) -> ShapeObject:
    matching = [o for o in scene.objects if desc.matches(o)]
    assert len(matching) == 1, f"{desc.text()!r} names {len(matching)} objects"
    return matching[0]


def posed_questions(families, scenes: int = 40, seed: int = 7):
    for index in range(scenes):
        rng = scene_rng(seed, index)
        scene = sample_scene(rng)
        posed = _question(scene, rng, families)
        if posed is not None:
            yield scene, posed


@pytest.mark.parametrize("family", RELATIONAL)
def test_relational_questions_are_about_the_true_closest_or_furthest_object(family):
    nearest = family == "closest"
    seen = 0
    for scene, (question, target, ref) in posed_questions((family,)):
        match = RELATION.fullmatch(question)
        assert match, question
        assert match.group(2) == ("closest to" if nearest else "furthest from")
        assert the_one(scene, parse(match.group(3))) is ref  # the question names its reference unambiguously
        assert target is related_object(scene, ref, nearest)
        others = [o for o in scene.objects if o is not ref]
        assert target is not ref and target in others
        # the ground truth, from the scene itself: the target beats every other object by the margin
        for other in others:
            if other is not target:
                gap = ref.distance(other) - ref.distance(target)
                assert (gap if nearest else -gap) >= RELATION_MARGIN
        seen += 1
    assert seen >= 10  # most scenes allow the question


@pytest.mark.parametrize("family", ATTRIBUTE)
def test_attribute_questions_are_about_the_object_they_name(family):
    seen = 0
    for scene, (question, target, ref) in posed_questions((family,)):
        match = ATTRIBUTE_QUESTION.fullmatch(question)
        assert match, question
        desc = parse(match.group(2))
        assert target is ref is the_one(scene, desc)
        if family == "query_color":
            assert match.group(1) == "color" and desc.color is None  # never gives the answer away
        else:
            assert match.group(1) == "shape" and desc.noun == "object"
        seen += 1
    assert seen >= 10


def test_no_question_when_no_object_can_be_named_that_way():
    import random

    # Three objects on an equilateral triangle: every object's nearest neighbours tie.
    red, blue, green = (ShapeObject("circle", "small", c, x, y, 15, COLORS[c])
                        for c, x, y in (("red", 60, 60), ("blue", 160, 60), ("green", 110, 60 + 50 * 3 ** 0.5)))
    tied = Scene(240, (red, blue, green))
    assert _question(tied, random.Random(0), ("closest",)) is None
    # Two objects alike but for colour: "what color is the ...?" cannot pick one out.
    twins = Scene(240, (red, ShapeObject("circle", "small", "blue", 190, 190, 15, COLORS["blue"])))
    assert _question(twins, random.Random(0), ("query_color",)) is None


@pytest.fixture(scope="module")
def engine(tiny_bundle):
    from vqa_cli.backends.registry import load_engine

    return load_engine(str(tiny_bundle), "cpu")


@pytest.mark.parametrize("families", [ATTRIBUTE, RELATIONAL], ids=["attribute", "relational"])
def test_peak_hit_rate_records_are_consistent(engine, families):
    seed = 11
    rate, records = peak_hit_rate(engine, scenes=3, seed=seed, families=families)
    assert len(records) == 3
    assert 0.0 <= rate <= 1.0
    assert rate == pytest.approx(sum(r["hit"] for r in records) / 3)
    expected = list(posed_questions(families, scenes=50, seed=seed))[:3]  # the same scenes, the same questions
    for record, (scene, (question, target, ref)) in zip(records, expected):
        assert record["question"] == question
        assert record["answer"] in engine.model.answers
        x, y = record["peak"]
        assert 0 <= x <= IMAGE_SIZE and 0 <= y <= IMAGE_SIZE
        assert record["bbox"] == pytest.approx(list(target.bbox()))
        x0, y0, x1, y1 = record["bbox"]
        assert record["hit"] == (x0 <= x <= x1 and y0 <= y <= y1)
        rx0, ry0, rx1, ry1 = ref.bbox()
        assert record["on_reference"] == (rx0 <= x <= rx1 and ry0 <= y <= ry1)
        if families == ATTRIBUTE:
            assert record["on_reference"] == record["hit"]  # the target is the object referred to

