"""A moving Shapes world: clips of objects that move in straight lines at constant speed.

An object may enter or leave the frame, or appear or vanish mid-clip. Objects that exist
at the same time never come closer than the static world allows (r1 + r2 + 6 px), so
every frame of a clip is a Shapes scene, except that objects may lie partly or wholly
outside the image and may cross a midline.

A question's true answer at a frame is its answer in that frame's scene (questions.answer_in),
provided it is the same whether the objects cut by the image border count or not;
otherwise, and where the scene allows no answer at all, the frame has no truth.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from .questions import Question, answer_in, ask
from .world import COLOR_JITTER, COLORS, IMAGE_SIZE, MIN_GAP, RADIUS, SHAPES, SIZES, BACKGROUND_RANGE, Scene, ShapeObject

FPS = 10
SECONDS = 8.0
SPEED = (6.0, 36.0)  # px per second
SOMETIMES = 0.3  # share of objects that appear or vanish mid-clip


@dataclass(frozen=True)
class Track:
    """One object through a clip: where it is at t=0, its velocity, and when it exists."""

    shape: str
    size: str
    color: str
    r: float
    rgb: tuple[int, int, int]
    x: float  # px at t = 0 (may lie outside the image)
    y: float
    vx: float  # px per second
    vy: float
    shown: float = 0.0  # seconds: it exists from here...
    hidden: float = math.inf  # ...until here

    def at(self, t: float) -> ShapeObject | None:
        if not self.shown <= t < self.hidden:
            return None
        return ShapeObject(self.shape, self.size, self.color, round(self.x + self.vx * t, 2), round(self.y + self.vy * t, 2), self.r, self.rgb)


@dataclass(frozen=True)
class Clip:
    background: int
    tracks: tuple[Track, ...]
    fps: int = FPS
    seconds: float = SECONDS

    @property
    def frames(self) -> int:
        return round(self.fps * self.seconds)

    def time(self, frame: int) -> float:
        return frame / self.fps

    def scene(self, frame: int) -> Scene:
        """Every object existing at this frame, wherever it is (inside the image or not)."""
        objects = (track.at(self.time(frame)) for track in self.tracks)
        return Scene(self.background, tuple(o for o in objects if o is not None))

    def truth(self, question: Question) -> list[str | None]:
        """The question's true answer at every frame; None where the frame allows none."""
        return [_frame_truth(self.scene(i), question) for i in range(self.frames)]

    def to_json(self) -> dict:
        """The clip and each object's position at every frame (None while it does not exist)."""
        positions = [[None if (o := t.at(self.time(i))) is None else [o.x, o.y] for i in range(self.frames)] for t in self.tracks]
        tracks = [{**asdict(t), "hidden": None if math.isinf(t.hidden) else t.hidden, "positions": p}
                  for t, p in zip(self.tracks, positions)]
        return {"background": self.background, "fps": self.fps, "frames": self.frames, "objects": tracks}


def _frame_truth(scene: Scene, question: Question) -> str | None:
    inside = _in_view(scene)
    seen = Scene(scene.background, tuple(o for o in scene.objects if partly_in_view(o)))
    answer = answer_in(inside, question)
    return answer if answer is not None and answer == answer_in(seen, question) else None


def _in_view(scene: Scene) -> Scene:
    return Scene(scene.background, tuple(o for o in scene.objects if wholly_in_view(o)))


def wholly_in_view(obj: ShapeObject) -> bool:
    """Every pixel of the object lies inside the image."""
    x0, y0, x1, y1 = obj.bbox()
    return x0 >= 0 and y0 >= 0 and x1 <= IMAGE_SIZE - 1 and y1 <= IMAGE_SIZE - 1


def partly_in_view(obj: ShapeObject) -> bool:
    """Some of the object lies inside the image (it may be cut by the border)."""
    x0, y0, x1, y1 = obj.bbox()
    return x1 >= 0 and y1 >= 0 and x0 <= IMAGE_SIZE - 1 and y0 <= IMAGE_SIZE - 1


def sample_clip(rng: random.Random, fps: int = FPS, seconds: float = SECONDS) -> Clip:
    """A clip of 3-6 objects, each placed by rejection sampling against those placed before it."""
    while True:
        n = rng.randint(3, 6)
        tracks: list[Track] = []
        for _ in range(n):
            track = _place_track(rng, tracks, fps, seconds)
            if track is None:
                break
            tracks.append(track)
        if len(tracks) == n:
            return Clip(rng.randint(*BACKGROUND_RANGE), tuple(tracks), fps, seconds)


def _place_track(rng: random.Random, others: list[Track], fps: int, seconds: float, tries: int = 200) -> Track | None:
    shape, size, color = rng.choice(SHAPES), rng.choice(SIZES), rng.choice(tuple(COLORS))
    r = round(rng.uniform(*RADIUS[size]), 2)
    rgb = tuple(min(255, max(0, c + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for c in COLORS[color])
    times = [i / fps for i in range(round(fps * seconds))]
    for _ in range(tries):
        # a point it passes mid-clip inside the image; from there it may well leave, or have entered
        mx, my = rng.uniform(r, IMAGE_SIZE - r), rng.uniform(r, IMAGE_SIZE - r)
        speed, heading = rng.uniform(*SPEED), rng.uniform(0, 2 * math.pi)
        vx, vy = speed * math.cos(heading), speed * math.sin(heading)
        shown, hidden = 0.0, math.inf
        if rng.random() < SOMETIMES:
            if rng.random() < 0.5:
                shown = round(rng.uniform(1.0, seconds / 2), 1)
            else:
                hidden = round(rng.uniform(seconds / 2, seconds - 1.0), 1)
        track = Track(shape, size, color, r, rgb, round(mx - vx * seconds / 2, 2), round(my - vy * seconds / 2, 2),
                      round(vx, 3), round(vy, 3), shown, hidden)
        if all(_apart(track, other, times) for other in others):
            return track
    return None


def _apart(a: Track, b: Track, times: list[float]) -> bool:
    for t in times:
        oa, ob = a.at(t), b.at(t)
        if oa is not None and ob is not None and oa.distance(ob) < oa.r + ob.r + MIN_GAP:
            return False
    return True


def clip_questions(clip: Clip, k: int, rng: random.Random, sampling: str = "balanced") -> list[Question]:
    """k distinct questions, posed of the objects wholly in view about a quarter and three quarters of
    the way through the clip (the nearest frames there with two such objects, if any)."""
    questions: list[Question] = []
    for n, anchor in enumerate((clip.frames // 4, 3 * clip.frames // 4)):
        visible = max((_in_view(clip.scene(f)) for f in sorted(range(clip.frames), key=lambda f: abs(f - anchor))),
                      key=lambda scene: min(len(scene.objects), 2))  # the first, nearest, with two objects in view
        wanted = (k + 1) // 2 if n == 0 else k - len(questions)
        seen = {q.question for q in questions}
        questions += [q for q in ask(visible, wanted + len(seen), rng, sampling) if q.question not in seen][:wanted]
    return questions
