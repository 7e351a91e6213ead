"""Pose questions about a Shapes scene, one family at a time, with their true answers."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from .world import ALL_DESCRIPTIONS, MIDLINE, MIDLINE_CLEARANCE, Scene, ShapeObject, references

FAMILIES = (
    "exist",
    "count",
    "query_color",
    "query_shape",
    "query_size",
    "horizontal",
    "vertical",
    "closest",
    "furthest",
    "compare",
)
RELATION_MARGIN = 10.0  # px the nearest (furthest) object must beat the runner-up by

@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    family: str

Candidates = dict[str, list[str]]  # answer -> questions with that answer

SAMPLINGS = ("balanced", "uniform")


def candidates(scene: Scene, family: str, rng: random.Random, sampling: str = "balanced") -> Candidates:
    """Every question of one family this scene supports, grouped by answer.

    exist and count cover every description, present or not. compare draws its pairs from
    everything the spec allows (both sides may be absent), and with "balanced" sampling half
    of them also with one side present, so that "more" is often true."""
    if family == "compare":
        return _compare(scene, rng, uniform=sampling == "uniform")
    return _FAMILY_CANDIDATES[family](scene, rng)

def ask(scene: Scene, k: int, rng: random.Random, sampling: str = "balanced") -> list[Question]:
    """Pose k distinct questions, cycling through the families.

    "balanced" draws each answer uniformly among those the scene allows for the family, then a
    question with that answer, so families and answers stay balanced (training data).
    "uniform" draws the question uniformly among all the family allows for the scene, whatever
    its answer: descriptions present or not as the spec makes them (a measuring set)."""
    questions: list[Question] = []
    seen: set[str] = set()
    families = list(FAMILIES)
    rng.shuffle(families)
    attempts = 0
    while len(questions) < k and attempts < 20 * k:
        family = families[attempts % len(families)]
        attempts += 1
        pool = candidates(scene, family, rng, sampling)
        pool = {a: [q for q in qs if q not in seen] for a, qs in pool.items()}
        pool = {a: qs for a, qs in pool.items() if qs}
        if not pool:
            continue
        if sampling == "uniform":
            text, answer = rng.choice([(q, a) for a in sorted(pool) for q in pool[a]])
        else:
            answer = rng.choice(sorted(pool))
            text = rng.choice(pool[answer])
        seen.add(text)
        questions.append(Question(text, answer, family))
    return questions

def _exist(scene: Scene, rng: random.Random) -> Candidates:
    out: Candidates = defaultdict(list)
    for desc in ALL_DESCRIPTIONS:
        out["yes" if desc.count(scene) else "no"].append(f"is there {desc.with_article()}?")
    return out

def _count(scene: Scene, rng: random.Random) -> Candidates:
    out: Candidates = defaultdict(list)
    for desc in ALL_DESCRIPTIONS:
        out[str(desc.count(scene))].append(f"how many {desc.text(plural=True)} are there?")
    return out

def _query(attribute: str, template: str, **allowed: bool):
    def family(scene: Scene, rng: random.Random) -> Candidates:
        out: Candidates = defaultdict(list)
        for desc, obj in references(scene, **allowed):
            centre = {"horizontal": obj.x, "vertical": obj.y}.get(attribute)
            if centre is not None and abs(centre - MIDLINE) <= MIDLINE_CLEARANCE:
                continue  # too near the midline to say (a moving object; scenes never place one there)
            out[getattr(obj, attribute)].append(template.format(ref=desc.text()))
        return out

    return family

def _relation(nearest: bool):
    word = "closest to" if nearest else "furthest from"

    def family(scene: Scene, rng: random.Random) -> Candidates:
        out: Candidates = defaultdict(list)
        for desc, ref in references(scene):
            target = related_object(scene, ref, nearest)
            if target is None:
                continue
            for attribute in ("color", "shape"):
                question = f"what {attribute} is the object {word} the {desc.text()}?"
                out[getattr(target, attribute)].append(question)
        return out

    return family

def related_object(scene: Scene, ref: ShapeObject, nearest: bool) -> ShapeObject | None:
    """The object nearest to (furthest from) ref, or None when the runner-up is within the margin."""
    others = sorted((o for o in scene.objects if o is not ref), key=ref.distance, reverse=not nearest)
    if not others:  # alone (a moving world's frame; scenes hold two objects or more)
        return None
    if len(others) >= 2 and abs(ref.distance(others[0]) - ref.distance(others[1])) < RELATION_MARGIN:
        return None
    return others[0]

def _compare(scene: Scene, rng: random.Random, tries: int = 60, uniform: bool = False) -> Candidates:
    counts = {desc: desc.count(scene) for desc in ALL_DESCRIPTIONS}
    present = [d for d, c in counts.items() if c]
    out: Candidates = defaultdict(list)
    for n in range(tries):
        # Pairs from the whole spec, where both sides are mostly absent (0 against 0: "no"),
        # and, unless uniform, as many pairs with one side present, so "more" is often true.
        a, b = rng.choice(ALL_DESCRIPTIONS), rng.choice(ALL_DESCRIPTIONS)
        if not uniform and n % 2 and present:
            a = rng.choice(present)
        if rng.random() < 0.5:
            a, b = b, a
        if a == b:
            continue
        answer = "yes" if counts[a] > counts[b] else "no"
        out[answer].append(f"are there more {a.text(plural=True)} than {b.text(plural=True)}?")
    return out

_PLURALS = {desc.text(plural=True): desc for desc in ALL_DESCRIPTIONS}


def answer_in(scene: Scene, question: Question) -> str | None:
    """The answer to `question` in `scene`, or None when the scene does not allow one: its
    reference picks out no single object, a relation is within the margin, or an object
    lies too near a midline to say which side it is on."""
    if question.family == "compare":
        a, b = question.question.removeprefix("are there more ").removesuffix("?").split(" than ")
        return "yes" if _PLURALS[a].count(scene) > _PLURALS[b].count(scene) else "no"
    pool = _FAMILY_CANDIDATES[question.family](scene, random.Random(0))  # every family but compare ignores the rng
    return next((answer for answer, texts in pool.items() if question.question in texts), None)


_FAMILY_CANDIDATES = {
    "exist": _exist,
    "count": _count,
    "query_color": _query("color", "what color is the {ref}?", color=False),
    "query_shape": _query("shape", "what shape is the {ref}?", shape=False),
    "query_size": _query("size", "what size is the {ref}?", size=False),
    "horizontal": _query("horizontal", "is the {ref} on the left or right?"),
    "vertical": _query("vertical", "is the {ref} at the top or bottom?"),
    "closest": _relation(nearest=True),
    "furthest": _relation(nearest=False),
}
