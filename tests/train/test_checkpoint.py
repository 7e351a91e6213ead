"""Checkpoints: a run interrupted after an evaluation resumes to exactly the weights of a straight run."""

import pytest
import torch
from safetensors.torch import load_file

from tests.train.test_loop import options
from vqa_cli.train.loop import train


def test_interrupted_training_resumes_to_the_same_weights(shapes_data, tiny_text_folder, tmp_path):
    straight = tmp_path / "straight"
    train(options(shapes_data, straight, tiny_text_folder, epochs=3))

    resumed = tmp_path / "resumed"
    evaluations = []

    def stop_at_second_evaluation(line: str):  # the first one has left a checkpoint at step 5
        if line.startswith("step"):
            evaluations.append(line)
            if len(evaluations) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(options(shapes_data, resumed, tiny_text_folder, epochs=3), report=stop_at_second_evaluation)
    assert (tmp_path / "resumed.checkpoint" / "state.json").is_file()
    lines = []
    train(options(shapes_data, resumed, tiny_text_folder, epochs=3), report=lines.append)
    assert any(line.startswith("resuming from step 5") for line in lines)
    a, b = load_file(straight / "head.safetensors"), load_file(resumed / "head.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
