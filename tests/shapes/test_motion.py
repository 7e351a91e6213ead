"""The moving Shapes world: straight tracks, objects kept apart, truth per frame, and `vqa synth --videos`."""

import json
import math
import random

import numpy as np
import pytest

from vqa_cli.io.video import Sampling, read_video
from vqa_cli.run.timeline import overall
from vqa_cli.backends.base import Answer
from vqa_cli.shapes.motion import SPEED, Clip, Track, clip_questions, partly_in_view, sample_clip, wholly_in_view
from vqa_cli.shapes.questions import FAMILIES, Question, answer_in
from vqa_cli.shapes.synth import synthesize_videos
from vqa_cli.shapes.world import COLORS, IMAGE_SIZE, MIN_GAP, Scene, ShapeObject


def clips(n: int, name: str = "motion") -> list[Clip]:
    return [sample_clip(random.Random(f"{name}-{i}")) for i in range(n)]


def test_a_track_moves_in_a_straight_line_at_constant_speed():
    track = Track("circle", "small", "red", 15, COLORS["red"], x=10, y=20, vx=30, vy=-12)
    points = [(o.x, o.y) for o in (track.at(t) for t in (0, 0.5, 1.0, 2.5))]
    assert points == [(10, 20), (25, 14), (40, 8), (85, -10)]
    assert track.at(1.0).shape == "circle" and track.at(1.0).r == 15 and track.at(1.0).rgb == COLORS["red"]


def test_a_track_exists_only_between_shown_and_hidden():
    track = Track("square", "large", "blue", 28, COLORS["blue"], 100, 100, 5, 5, shown=1.0, hidden=3.0)
    assert track.at(0.9) is None and track.at(1.0) is not None and track.at(2.9) is not None and track.at(3.0) is None


def test_objects_in_sampled_clips_move_steadily_from_frame_to_frame():
    for clip in clips(5):
        assert clip.frames == 80 and clip.fps == 10
        for track in clip.tracks:
            assert SPEED[0] - 0.01 <= math.hypot(track.vx, track.vy) <= SPEED[1] + 0.01
            seen = [o for o in (track.at(clip.time(f)) for f in range(clip.frames)) if o is not None]
            steps = [(b.x - a.x, b.y - a.y) for a, b in zip(seen, seen[1:])]
            assert all(dx == pytest.approx(track.vx / 10, abs=0.02) and dy == pytest.approx(track.vy / 10, abs=0.02) for dx, dy in steps)


def test_objects_that_exist_at_the_same_time_never_come_closer_than_the_world_allows():
    for clip in clips(8):
        for f in range(clip.frames):
            objects = clip.scene(f).objects
            for i, a in enumerate(objects):
                for b in objects[i + 1:]:
                    assert a.distance(b) >= a.r + b.r + MIN_GAP - 1e-6, (clip, f, a, b)


def test_objects_enter_and_leave_the_frame_and_appear_and_vanish_mid_clip():
    entered = left = appeared = vanished = 0
    for clip in clips(20):
        for track in clip.tracks:
            alive = [o for o in (track.at(clip.time(f)) for f in range(clip.frames)) if o is not None]
            assert any(partly_in_view(o) for o in alive)  # every object is on screen at some point
            entered += not wholly_in_view(alive[0]) and wholly_in_view(alive[-1])
            left += wholly_in_view(alive[0]) and not wholly_in_view(alive[-1])
            appeared += track.shown > 0
            vanished += math.isfinite(track.hidden)
            assert track.shown == 0 or math.isinf(track.hidden)  # one or the other, not both
    assert entered > 0 and left > 0 and appeared > 0 and vanished > 0


def test_clip_questions_are_distinct_and_about_objects_in_view():
    for clip in clips(3):
        questions = clip_questions(clip, 6, random.Random(1))
        assert len(questions) == 6 and len({q.question for q in questions}) == 6
        assert all(q.family in FAMILIES for q in questions)
        in_view = [Scene(clip.background, tuple(o for o in clip.scene(f).objects if wholly_in_view(o))) for f in range(clip.frames)]
        for q in questions:  # posed of the objects wholly in view at some frame, with that frame's answer
            assert any(answer_in(scene, q) == q.answer for scene in in_view), q


# Two seconds at 10 fps: a red circle sliding in from the left border (cut by it for frames 0-5,
# wholly inside from frame 6), a blue square that vanishes at 1 s, a green triangle wholly outside.
HAND_MADE = Clip(240, (
    Track("circle", "large", "red", 20, COLORS["red"], x=-10, y=60, vx=50, vy=0),
    Track("square", "small", "blue", 16, COLORS["blue"], x=200, y=200, vx=0, vy=0, hidden=1.0),
    Track("triangle", "small", "green", 15, COLORS["green"], x=-100, y=150, vx=0, vy=0),
), fps=10, seconds=2.0)


@pytest.mark.parametrize("question, family, expected", [
    ("is there a red circle?", "exist", [None] * 6 + ["yes"] * 14),
    ("how many circles are there?", "count", [None] * 6 + ["1"] * 14),
    ("are there more red circles than green objects?", "compare", [None] * 6 + ["yes"] * 14),
    ("what color is the circle?", "query_color", [None] * 6 + ["red"] * 14),
    ("is there a blue square?", "exist", ["yes"] * 10 + ["no"] * 10),  # the cut circle changes nothing here
    ("is there a green triangle?", "exist", ["no"] * 20),  # wholly outside: not there, not unknown
])
def test_a_frame_has_no_truth_where_an_object_cut_by_the_border_changes_the_answer(question, family, expected):
    assert HAND_MADE.frames == 20
    assert HAND_MADE.truth(Question(question, "", family)) == expected


def test_answer_in_compares_counts():
    scene = Scene(240, (
        ShapeObject("circle", "small", "red", 60, 60, 15, COLORS["red"]),
        ShapeObject("circle", "large", "red", 180, 60, 28, COLORS["red"]),
        ShapeObject("square", "small", "blue", 60, 190, 15, COLORS["blue"]),
    ))

    def compare(text):
        return answer_in(scene, Question(text, "", "compare"))

    assert compare("are there more red circles than blue squares?") == "yes"
    assert compare("are there more blue squares than red circles?") == "no"
    assert compare("are there more small objects than large objects?") == "yes"
    assert compare("are there more large objects than blue objects?") == "no"  # 1 against 1
    assert compare("are there more green triangles than purple squares?") == "no"  # 0 against 0
    assert answer_in(scene, Question("how many red circles are there?", "", "count")) == "2"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    out = tmp_path_factory.mktemp("videos")
    written = synthesize_videos(out, 2, 4, seed=5)
    rows = [json.loads(line) for line in (out / "videos.jsonl").read_text().splitlines()]
    return out, written, rows


def test_synth_writes_8_second_clips_at_10_fps(synthesized):
    out, _, _ = synthesized
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["clip_000000.mp4", "clip_000001.mp4"]
    clip = read_video(out / "videos" / "clip_000000.mp4", "clip", Sampling(fps=10, max_frames=200))
    assert clip.info() == {"duration": 8.0, "fps": 10.0, "width": IMAGE_SIZE, "height": IMAGE_SIZE, "sampled": 80}


def test_synth_rows_carry_the_truth_at_every_frame_and_the_overall_answer(synthesized):
    out, written, rows = synthesized
    assert written == len(rows) > 0
    assert {row["image"] for row in rows} <= {"videos/clip_000000.mp4", "videos/clip_000001.mp4"}
    for row in rows:
        assert set(row) == {"id", "image", "question", "answer", "family", "truth"} and row["family"] in FAMILIES
        truth = row["truth"]
        assert truth["fps"] == 10 and len(truth["answers"]) == 80 and any(a is not None for a in truth["answers"])
        assert row["answer"] == overall([Answer("", a, 1.0) for a in truth["answers"] if a is not None])[0]


def tracks_of(clip: dict) -> tuple[Track, ...]:
    return tuple(
        Track(**{**{k: v for k, v in o.items() if k != "positions"}, "rgb": tuple(o["rgb"]),
                 "hidden": math.inf if o["hidden"] is None else o["hidden"]})
        for o in clip["objects"]
    )


def test_synth_scenes_hold_every_objects_position_at_every_frame_as_rendered(synthesized):
    out, _, rows = synthesized
    scenes = json.loads((out / "scenes.json").read_text())
    assert scenes["seed"] == 5 and [c["video"] for c in scenes["clips"]] == ["videos/clip_000000.mp4", "videos/clip_000001.mp4"]
    for data in scenes["clips"]:
        assert data["fps"] == 10 and data["frames"] == 80
        clip = Clip(data["background"], tracks_of(data), data["fps"], data["frames"] / data["fps"])
        for o, track in zip(data["objects"], clip.tracks):
            assert len(o["positions"]) == 80
            for f, position in enumerate(o["positions"]):
                now = track.at(f / 10)
                assert position == (None if now is None else [now.x, now.y])
        for row in (r for r in rows if r["image"] == data["video"]):  # the truth is the scenes' truth
            assert clip.truth(Question(row["question"], row["answer"], row["family"])) == row["truth"]["answers"]
        decoded = read_video(out / data["video"], "clip", Sampling(fps=10, max_frames=80))
        checked = 0
        for f in (0, 40, 79):
            pixels = np.asarray(decoded.frames[f]).astype(int)
            for obj in clip.scene(f).objects:
                if wholly_in_view(obj):
                    assert np.abs(pixels[round(obj.y), round(obj.x)] - obj.rgb).max() < 40, (data["video"], f, obj)
                    checked += 1
        assert checked > 0


def test_the_same_seed_gives_the_same_clip_whatever_the_number_of_clips(synthesized, tmp_path):
    out, _, rows = synthesized
    synthesize_videos(tmp_path, 1, 4, seed=5)
    assert (tmp_path / "videos" / "clip_000000.mp4").read_bytes() == (out / "videos" / "clip_000000.mp4").read_bytes()
    again = [json.loads(line) for line in (tmp_path / "videos.jsonl").read_text().splitlines()]
    assert again == [r for r in rows if r["image"] == "videos/clip_000000.mp4"]
    assert json.loads((tmp_path / "scenes.json").read_text())["clips"] == json.loads((out / "scenes.json").read_text())["clips"][:1]
