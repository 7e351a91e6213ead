"""The Shapes world: its constants, scenes, and the descriptions that pick objects out.

Everything here is pure Python so that scene logic can be tested against hand-made
scenes without rendering anything.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from itertools import product

IMAGE_SIZE = 256
MIDLINE = IMAGE_SIZE // 2
MARGIN = 4  # px between every object and the image border
MIN_GAP = 6  # px: centres are at least r1 + r2 + MIN_GAP apart
MIDLINE_CLEARANCE = 12  # px: no centre this close to a midline, so left/right and top/bottom are unambiguous
BACKGROUND_RANGE = (215, 255)
COLOR_JITTER = 12

SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
RADIUS = {"small": (14, 18), "large": (26, 32)}
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 190),
    "orange": (245, 135, 25),
    "gray": (120, 120, 120),
    "cyan": (30, 190, 200),
}
NOUNS = SHAPES + ("object",)


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene. (x, y) is its centre in pixels; y grows downward."""

    shape: str
    size: str
    color: str
    x: float
    y: float
    r: float  # the size's radius; squares and triangles scale from it
    rgb: tuple[int, int, int] = (0, 0, 0)  # the colour as rendered, after jitter

    @property
    def horizontal(self) -> str:
        return "left" if self.x < MIDLINE else "right"

    @property
    def vertical(self) -> str:
        return "top" if self.y < MIDLINE else "bottom"

    def extent(self) -> tuple[float, float, float, float]:
        """How far the shape reaches (left, top, right, bottom) from its centre."""
        if self.shape == "circle":
            return (self.r,) * 4
        if self.shape == "square":
            return (0.9 * self.r,) * 4
        R = 1.15 * self.r  # circumradius of the upward equilateral triangle
        half_width = R * math.sqrt(3) / 2
        return (half_width, R, half_width, R / 2)

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in pixels."""
        left, top, right, bottom = self.extent()
        return (self.x - left, self.y - top, self.x + right, self.y + bottom)

    def distance(self, other: "ShapeObject") -> float:
        return math.hypot(self.x - other.x, self.y - other.y)


@dataclass(frozen=True)
class Scene:
    background: int
    objects: tuple[ShapeObject, ...]

    def to_json(self) -> dict:
        return {"background": self.background, "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_json(cls, data: dict) -> "Scene":
        objects = tuple(
            ShapeObject(**{**o, "rgb": tuple(o.get("rgb", (0, 0, 0)))}) for o in data["objects"]
        )
        return cls(background=data["background"], objects=objects)


@dataclass(frozen=True)
class Description:
    """`[size] [color] noun`: any part may be left out except the noun ('object' matches any shape)."""

    size: str | None
    color: str | None
    noun: str

    def matches(self, obj: ShapeObject) -> bool:
        return (
            (self.size is None or self.size == obj.size)
            and (self.color is None or self.color == obj.color)
            and (self.noun == "object" or self.noun == obj.shape)
        )

    def count(self, scene: Scene) -> int:
        return sum(self.matches(o) for o in scene.objects)

    def text(self, plural: bool = False) -> str:
        words = [w for w in (self.size, self.color, self.noun) if w]
        return " ".join(words) + ("s" if plural else "")

    def with_article(self) -> str:
        phrase = self.text()
        return ("an " if phrase[0] in "aeiou" else "a ") + phrase


ALL_DESCRIPTIONS = tuple(
    Description(size, color, noun)
    for size, color, noun in product((None,) + SIZES, (None,) + tuple(COLORS), NOUNS)
)


def references(scene: Scene, *, size=True, color=True, shape=True) -> list[tuple[Description, ShapeObject]]:
    """Descriptions that pick out exactly one object, built only from the allowed attributes."""
    found = []
    for desc in ALL_DESCRIPTIONS:
        if (desc.size and not size) or (desc.color and not color) or (desc.noun != "object" and not shape):
            continue
        matching = [o for o in scene.objects if desc.matches(o)]
        if len(matching) == 1:
            found.append((desc, matching[0]))
    return found


def sample_scene(rng: random.Random) -> Scene:
    """Draw a scene: 2-6 objects placed with rejection sampling under the world's rules."""
    while True:
        n = rng.randint(2, 6)
        objects: list[ShapeObject] = []
        for _ in range(n):
            placed = _place(rng, objects)
            if placed is None:
                break
            objects.append(placed)
        if len(objects) == n:
            return Scene(background=rng.randint(*BACKGROUND_RANGE), objects=tuple(objects))


def _place(rng: random.Random, others: list[ShapeObject], tries: int = 200) -> ShapeObject | None:
    shape, size, color = rng.choice(SHAPES), rng.choice(SIZES), rng.choice(tuple(COLORS))
    r = rng.uniform(*RADIUS[size])
    rgb = tuple(min(255, max(0, c + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for c in COLORS[color])
    for _ in range(tries):
        probe = ShapeObject(shape, size, color, 0.0, 0.0, r, rgb)
        left, top, right, bottom = probe.extent()
        x = rng.uniform(MARGIN + left, IMAGE_SIZE - 1 - MARGIN - right)
        y = rng.uniform(MARGIN + top, IMAGE_SIZE - 1 - MARGIN - bottom)
        if abs(x - MIDLINE) <= MIDLINE_CLEARANCE or abs(y - MIDLINE) <= MIDLINE_CLEARANCE:
            continue
        candidate = ShapeObject(shape, size, color, round(x, 2), round(y, 2), round(r, 2), rgb)
        if all(candidate.distance(o) >= candidate.r + o.r + MIN_GAP for o in others):
            return candidate
    return None
