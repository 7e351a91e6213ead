"""Training data: the vocabulary, and per-object targets read from scene annotations."""

import json

import pytest
import torch

from vqa_cli.errors import InputError
from vqa_cli.train.data import read_scenes, vocabulary

SCENE = {"image": "a.png", "objects": [
    {"shape": "circle", "color": "red", "x": 10, "y": 10},
    {"shape": "square", "color": "blue", "x": 30, "y": 10},
    {"shape": "circle", "color": "green", "x": 90, "y": 90},
]}


def test_vocabulary_keeps_the_most_frequent():
    answers = ["no"] * 3 + ["yes"] * 5 + ["red"] * 3 + ["blue"]
    assert vocabulary(answers) == ["yes", "no", "red", "blue"]
    assert vocabulary(answers, top=2) == ["yes", "no"]


def test_each_object_gets_its_own_attributes_its_half_and_its_nearest_and_furthest(tmp_path):
    path = tmp_path / "scenes.json"
    path.write_text(json.dumps({"scenes": [SCENE]}))
    notes = read_scenes(str(path), ["a.png"], [(100, 100)], k=4)
    assert notes.mask.tolist() == [[True, True, True, False]]
    torch.testing.assert_close(notes.centres[0, 1], torch.tensor([0.3, 0.1]))

    def value(name, j):
        return notes.classes[name][notes.targets[name][0, j]]

    assert [value("color", j) for j in range(3)] == ["red", "blue", "green"]
    assert value("nearest_color", 0) == "blue" and value("furthest_color", 0) == "green"
    assert value("nearest_shape", 2) == "square" and value("half_x", 2) == "right" and value("half_y", 0) == "top"
    assert notes.targets["color"][0, 3] == -1  # empty slot: ignored by the loss


def test_missing_scenes_and_too_many_objects_are_clear_errors(tmp_path):
    path = tmp_path / "scenes.json"
    path.write_text(json.dumps({"scenes": [SCENE]}))
    with pytest.raises(InputError, match="no scene for 1 training images"):
        read_scenes(str(path), ["a.png", "b.png"], [(100, 100)] * 2, k=4)
    with pytest.raises(InputError, match="pass --objects 3"):
        read_scenes(str(path), ["a.png"], [(100, 100)], k=2)
