"""`vqa find`: images ranked by the probability of an answer, with the builtin model on scenes whose truth is known."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from vqa_cli.cli import app
from vqa_cli.shapes.render import render
from vqa_cli.shapes.world import sample_scene

runner = CliRunner()
QUESTION = "is there a red circle?"


def has_red_circle(scene) -> bool:
    return any(o.shape == "circle" and o.color == "red" for o in scene.objects)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """16 rendered scenes, 5 of them with a red circle; returns (folder, the paths with one)."""
    folder = tmp_path_factory.mktemp("find")
    rng, with_circle, n = random.Random(3), [], 0
    while n < 16:
        scene = sample_scene(rng)
        if has_red_circle(scene) and len(with_circle) >= 5:
            continue
        path = folder / f"scene_{n:02d}.png"
        render(scene).save(path)
        if has_red_circle(scene):
            with_circle.append(str(path))
        n += 1
    assert len(with_circle) == 5
    return folder, with_circle


def find(*args, input=None):
    return runner.invoke(app, ["find", *map(str, args)], input=input)


def test_the_best_images_come_first_with_their_scores(scenes):
    folder, with_circle = scenes
    result = find(QUESTION, folder, "--top", "5")
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert sorted(path for _, path in lines) == sorted(with_circle)
    scores = [float(score) for score, _ in lines]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0.5


def test_a_threshold_streams_every_match_in_input_order_and_paths_can_come_from_stdin(scenes):
    folder, with_circle = scenes
    paths = "\n".join(str(p) for p in sorted(folder.glob("*.png"))) + "\n"
    result = find(QUESTION, "-", "--threshold", "0.5", "--json", input=paths)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and [r["image"] for r in records] == sorted(with_circle)
    assert all(r["error"] is None and r["score"] >= 0.5 for r in records)


def test_a_bad_image_is_an_error_record_and_the_rest_are_ranked(scenes, tmp_path):
    folder, with_circle = scenes
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = find(QUESTION, broken, folder, "--top", "2", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and records[0]["image"] == str(broken) and records[0]["error"]
    assert len(records) == 3 and all(r["image"] in with_circle for r in records[1:])


def test_the_answer_must_be_one_of_the_choices_the_model_can_give(scenes):
    folder, _ = scenes
    assert find("what color is the circle?", folder, "--answer", "red", "--choices", "blue,green").exit_code == 2
    unknown = find("what color is the circle?", folder, "--answer", "red", "--choices", "red,mauve")
    assert unknown.exit_code == 1 and "'mauve'" in unknown.stderr and unknown.stderr.count("\n") == 1
    colors = find("what color is the circle?", folder, "--answer", "red", "--choices", "red,blue,green,yellow,purple,gray", "--top", "1")
    assert colors.exit_code == 0 and len(colors.stdout.splitlines()) == 1
