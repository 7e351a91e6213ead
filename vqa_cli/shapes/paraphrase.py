"""Other wordings of each question family: one set to train on, one held out to measure.

Each rule rewrites a templated question into a paraphrase with the same answer.
HELD_OUT (`vqa synth --paraphrase`) measures how far the model carries to wordings it
never saw; TRAINING (`vqa synth --reword P`) is what training data may use. The two sets
share no wording, and a test keeps it so.
"""

from __future__ import annotations

import random
import re

# (family, pattern on the templated question, paraphrases); \1, \2 are the pattern's groups.
HELD_OUT = [
    ("exist", r"^is there (an? .+)\?$", ["can you see \\1?", "does the picture contain \\1?"]),
    ("count", r"^how many (.+) are there\?$", ["what is the number of \\1?", "how many \\1 can you see?"]),
    ("query_color", r"^what color is the (.+)\?$", ["which colour is the \\1?", "what is the color of the \\1?"]),
    ("query_shape", r"^what shape is the (.+)\?$", ["what is the shape of the \\1?", "which shape does the \\1 have?"]),
    ("query_size", r"^what size is the (.+)\?$", ["how big is the \\1?", "is the \\1 small or large?"]),
    ("horizontal", r"^is the (.+) on the left or right\?$", ["is the \\1 on the left side or the right side?", "which side is the \\1 on, left or right?"]),
    ("vertical", r"^is the (.+) at the top or bottom\?$", ["is the \\1 in the upper or lower half?", "is the \\1 near the top or the bottom?"]),
    ("closest", r"^what (color|shape) is the object closest to the (.+)\?$", ["what \\1 is the object nearest to the \\2?", "what is the \\1 of the object nearest the \\2?"]),
    ("furthest", r"^what (color|shape) is the object furthest from the (.+)\?$", ["what \\1 is the object farthest from the \\2?", "what is the \\1 of the object farthest away from the \\2?"]),
    ("compare", r"^are there more (.+) than (.+)\?$", ["is the number of \\1 greater than the number of \\2?", "do \\1 outnumber \\2?"]),
]
TRAINING = [
    ("exist", r"^is there (an? .+)\?$", ["do you see \\1?", "is \\1 visible?", "does the scene include \\1?"]),
    ("count", r"^how many (.+) are there\?$", ["count the \\1.", "how many \\1 are in the image?", "how many \\1 do you see?"]),
    ("query_color", r"^what color is the (.+)\?$", ["what color does the \\1 have?", "the \\1 is what color?", "name the color of the \\1."]),
    ("query_shape", r"^what shape is the (.+)\?$", ["what kind of shape is the \\1?", "the \\1 is what shape?", "name the shape of the \\1."]),
    ("query_size", r"^what size is the (.+)\?$", ["how large is the \\1?", "what size does the \\1 have?", "the \\1 is what size?"]),
    ("horizontal", r"^is the (.+) on the left or right\?$", ["is the \\1 in the left or right half?", "is the \\1 left or right?", "on which side is the \\1, left or right?"]),
    ("vertical", r"^is the (.+) at the top or bottom\?$", ["is the \\1 in the top or bottom half?", "is the \\1 top or bottom?", "is the \\1 above or below the middle?"]),
    ("closest", r"^what (color|shape) is the object closest to the (.+)\?$", ["what \\1 is the thing closest to the \\2?", "which \\1 does the object closest to the \\2 have?", "the object closest to the \\2 is what \\1?"]),
    ("furthest", r"^what (color|shape) is the object furthest from the (.+)\?$", ["what \\1 is the thing furthest from the \\2?", "which \\1 does the object furthest from the \\2 have?", "the object most distant from the \\2 is what \\1?"]),
    ("compare", r"^are there more (.+) than (.+)\?$", ["are there more \\1 than there are \\2?", "is the count of \\1 larger than the count of \\2?", "are \\1 more numerous than \\2?"]),
]
_COMPILED = {
    name: [(family, re.compile(pattern), outs) for family, pattern, outs in rules]
    for name, rules in (("held-out", HELD_OUT), ("training", TRAINING))
}


def paraphrase(question: str, family: str, rng: random.Random, rules: str = "held-out") -> str:
    """A rewording of a templated question from one rule set (the question itself if no rule applies)."""
    for rule_family, pattern, outs in _COMPILED[rules]:
        if rule_family == family:
            match = pattern.match(question)
            if match:
                return match.expand(rng.choice(outs))
    return question
