"""Rewordings: a training set and a held-out set, which keep the answer and never share a wording."""

import random
import re
from collections import defaultdict

import pytest

from tests.shapes.test_questions import SCENE
from vqa_cli.shapes.paraphrase import HELD_OUT, TRAINING, paraphrase
from vqa_cli.shapes.questions import FAMILIES, ask, candidates
from vqa_cli.shapes.world import ALL_DESCRIPTIONS, sample_scene

# What each rewording means, written here by hand and independently of paraphrase.py: the
# templated question it asks, which the generator can answer. A new rewording needs a line.
READINGS = {
    "exist": [("can you see X?", "does the picture contain X?", "do you see X?", "is X visible?",
               "does the scene include X?"), "is there {0}?"],
    "count": [("what is the number of X?", "how many X can you see?", "count the X.", "how many X are in the image?",
               "how many X do you see?"), "how many {0} are there?"],
    "query_color": [("which colour is the X?", "what is the color of the X?", "what color does the X have?",
                     "the X is what color?", "name the color of the X."), "what color is the {0}?"],
    "query_shape": [("what is the shape of the X?", "which shape does the X have?", "what kind of shape is the X?",
                     "the X is what shape?", "name the shape of the X."), "what shape is the {0}?"],
    "query_size": [("how big is the X?", "is the X small or large?", "how large is the X?", "what size does the X have?",
                    "the X is what size?"), "what size is the {0}?"],
    "horizontal": [("is the X on the left side or the right side?", "which side is the X on, left or right?",
                    "is the X in the left or right half?", "is the X left or right?",
                    "on which side is the X, left or right?"), "is the {0} on the left or right?"],
    "vertical": [("is the X in the upper or lower half?", "is the X near the top or the bottom?",
                  "is the X in the top or bottom half?", "is the X top or bottom?", "is the X above or below the middle?"),
                 "is the {0} at the top or bottom?"],
    "closest": [("what A is the object nearest to the X?", "what is the A of the object nearest the X?",
                 "what A is the thing closest to the X?", "which A does the object closest to the X have?",
                 "the object closest to the X is what A?"), "what {0} is the object closest to the {1}?"],
    "furthest": [("what A is the object farthest from the X?", "what is the A of the object farthest away from the X?",
                  "what A is the thing furthest from the X?", "which A does the object furthest from the X have?",
                  "the object most distant from the X is what A?"), "what {0} is the object furthest from the {1}?"],
    "compare": [("is the number of X greater than the number of Y?", "do X outnumber Y?",
                 "are there more X than there are Y?", "is the count of X larger than the count of Y?",
                 "are X more numerous than Y?"), "are there more {0} than {1}?"],
}


def _pattern(wording: str) -> re.Pattern:
    """A wording with A (an attribute), X and Y (descriptions) as a regex whose groups come in the order A, X, Y."""
    groups = {"A": "(?P<A>color|shape)", "X": "(?P<X>.+)", "Y": "(?P<Y>.+)"}
    return re.compile("^" + "".join(groups.get(part, re.escape(part)) for part in re.split(r"\b([AXY])\b", wording)) + "$")


def read(question: str, family: str) -> str | None:
    """The templated question a rewording means, or None if READINGS does not know the wording."""
    wordings, template = READINGS[family]
    for wording in wordings:
        match = _pattern(wording).match(question)
        if match:
            return template.format(*[match[g] for g in "AXY" if g in match.groupdict()])
    return None


def answer(scene, question: str, family: str) -> str | None:
    """The scene's true answer to a templated question, from the generator (None if it does not pose it)."""
    if family == "compare":  # the generator draws its pairs at random: count the two sides instead
        plural = {d.text(plural=True): d for d in ALL_DESCRIPTIONS}
        a, b = question.removeprefix("are there more ").removesuffix("?").split(" than ")
        return "yes" if plural[a].count(scene) > plural[b].count(scene) else "no"
    found = [a for a, questions in candidates(scene, family, random.Random(0)).items() if question in questions]
    assert len(found) <= 1
    return found[0] if found else None


class Pick:
    """An rng whose choice is always the i-th option, to try every rewording of a rule."""

    def __init__(self, i: int):
        self.i = i

    def choice(self, options):
        return options[self.i % len(options)]


SCENES = [SCENE] + [sample_scene(random.Random(seed)) for seed in range(12)]


@pytest.mark.parametrize("rules", ["held-out", "training"])
def test_every_family_has_paraphrases_that_keep_the_answer(rules):
    """Every rewording of every question, read back by hand and answered on its scene, gives the question's answer."""
    outs = {family: len(o) for family, _, o in (HELD_OUT if rules == "held-out" else TRAINING)}
    answers = defaultdict(set)
    for n, scene in enumerate(SCENES):
        for q in ask(scene, 40, random.Random(n)):
            assert answer(scene, q.question, q.family) == q.answer, q  # the reader agrees with the generator
            for i in range(outs[q.family]):
                reworded = paraphrase(q.question, q.family, Pick(i), rules=rules)
                assert reworded != q.question, q
                meant = read(reworded, q.family)
                assert meant is not None, f"no reading for {reworded!r}: add what it means to READINGS"
                assert answer(scene, meant, q.family) == q.answer, (q, reworded, meant)
            answers[q.family].add(q.answer)
    assert set(answers) == set(FAMILIES)
    assert answers["compare"] == {"yes", "no"}  # so a rewording that swapped the two sides would be caught
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
