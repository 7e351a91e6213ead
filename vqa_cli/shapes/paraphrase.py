"""Other wordings of each question family, to see how far the pretrained text encoder carries.

Each rule rewrites a templated question into a paraphrase with the same answer. None of
these wordings occurs in training data made by `vqa synth` without --paraphrase.
"""

from __future__ import annotations

import random
import re

# (family, pattern on the templated question, paraphrases); \1, \2 are the pattern's groups.
RULES = [
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
_COMPILED = [(family, re.compile(pattern), outs) for family, pattern, outs in RULES]


def paraphrase(question: str, family: str, rng: random.Random) -> str:
    """A rewording of a templated question (the question itself if no rule applies)."""
    for rule_family, pattern, outs in _COMPILED:
        if rule_family == family:
            match = pattern.match(question)
            if match:
                return match.expand(rng.choice(outs))
    return question
