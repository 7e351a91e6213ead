"""`vqa synth`: deterministic files, scenes.json ground truth, and rewording only when asked."""

import csv
import json

from vqa_cli.shapes.synth import synthesize


def rows(folder):
    with open(folder / "questions.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_same_seed_same_files_and_scenes_match_the_images(tmp_path):
    synthesize(tmp_path / "a", 5, 4, seed=7)
    synthesize(tmp_path / "b", 5, 4, seed=7)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    scenes = json.loads((tmp_path / "a" / "scenes.json").read_text())
    assert scenes["seed"] == 7 and [s["image"] for s in scenes["scenes"]] == [f"images/scene_{i:06d}.png" for i in range(5)]
    assert all({"x", "y", "shape", "color", "size"} <= set(o) for s in scenes["scenes"] for o in s["objects"])


def test_rewording_keeps_scenes_and_answers_and_rewords_about_the_share_asked(tmp_path):
    synthesize(tmp_path / "plain", 60, 5, seed=3)
    synthesize(tmp_path / "reworded", 60, 5, seed=3, reword=0.5)
    plain, reworded = rows(tmp_path / "plain"), rows(tmp_path / "reworded")
    assert [(r["image"], r["answer"], r["family"]) for r in plain] == [(r["image"], r["answer"], r["family"]) for r in reworded]
    share = sum(a["question"] != b["question"] for a, b in zip(plain, reworded)) / len(plain)
    assert 0.35 < share < 0.65
    assert (tmp_path / "plain" / "scenes.json").read_text() == (tmp_path / "reworded" / "scenes.json").read_text()
