"""Rewordings: a training set and a held-out set, which keep the answer and never share a wording."""

import random

from tests.shapes.test_questions import SCENE
from vqa_cli.shapes.paraphrase import HELD_OUT, TRAINING, paraphrase
from vqa_cli.shapes.questions import FAMILIES, ask


def test_every_family_has_paraphrases_that_keep_the_answer():
    rng = random.Random(0)
    seen = set()
    for q in ask(SCENE, 40, random.Random(1)):
        reworded = paraphrase(q.question, q.family, rng)
        assert reworded != q.question, q
        seen.add(q.family)
    assert seen >= set(FAMILIES) - {"closest"}
    assert paraphrase("what color is the large square?", "query_color", random.Random(0)) in (
        "which colour is the large square?", "what is the color of the large square?")


def test_training_rewordings_cover_every_family_and_differ_from_the_held_out_ones():
    rng = random.Random(0)
    for q in ask(SCENE, 40, random.Random(1)):
        assert paraphrase(q.question, q.family, rng, rules="training") != q.question, q
    held_out = {out for _, _, outs in HELD_OUT for out in outs}
    training = {out for _, _, outs in TRAINING for out in outs}
    assert not held_out & training
    assert {f for f, _, _ in TRAINING} == {f for f, _, _ in HELD_OUT} == set(FAMILIES)
