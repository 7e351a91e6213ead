import pytest
import torch
from safetensors.torch import load_file

from vqa_cli import bundle as bundles
from vqa_cli.train import TrainOptions, train, vocabulary


def options(data, out, text, **overrides) -> TrainOptions:
    base = dict(
        data=str(data / "questions.csv"), out=str(out), text_encoder=str(text), image_size=32,
        epochs=6, images_per_batch=4, eval_every=5, warmup_steps=2, lr=3e-3, width=32, layers=1,
        image_layers=1, heads=2, val_fraction=0.2, seed=3,
    )
    base.update(overrides)
    return TrainOptions(**base)


@pytest.mark.parametrize("geometric", [False, True], ids=["plain", "geometric"])
def test_tiny_training_lowers_the_loss_and_writes_a_bundle_that_loads(shapes_data, tiny_text_folder, tmp_path, geometric):
    extra = dict(geometric=True, layers=2) if geometric else {}
    summary = train(options(shapes_data, tmp_path / "bundle", tiny_text_folder, **extra))
    losses = [entry["train_loss"] for entry in summary["history"]]
    assert losses[-1] < losses[0]
    loaded = bundles.load(str(tmp_path / "bundle"))
    assert set(loaded.model.answers) <= {"yes", "no", "0", "1", "2", "3", "4", "5", "6", "left", "right", "top",
                                         "bottom", "small", "large", "circle", "square", "triangle", "red", "green",
                                         "blue", "yellow", "purple", "orange", "gray", "cyan"}
    config = bundles.read_config(tmp_path / "bundle")
    assert config["image_encoder"]["saved_inside"] and config["provenance"]["validation"]["step"] > 0
    assert not (tmp_path / "bundle.checkpoint").exists()
    assert loaded.model.config.geometric == geometric
    if geometric:  # the learned distance functions are saved, not rebuilt from their priors
        saved = load_file(tmp_path / "bundle" / "head.safetensors")
        table = next(v for k, v in saved.items() if k.endswith("blocks.1.distance_table"))
        assert not torch.equal(table, type(loaded.model.head.blocks[1])._prior(2))


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


def test_vocabulary_keeps_the_most_frequent():
    answers = ["no"] * 3 + ["yes"] * 5 + ["red"] * 3 + ["blue"]
    assert vocabulary(answers) == ["yes", "no", "red", "blue"]
    assert vocabulary(answers, top=2) == ["yes", "no"]


def test_head_on_frozen_pretrained_clip_features(shapes_data, tiny_text_folder, tiny_clip_folder, tmp_path):
    out = tmp_path / "clip-head"
    train(options(shapes_data, out, tiny_text_folder, image_encoder=str(tiny_clip_folder), epochs=1))
    config = bundles.read_config(out)
    assert config["image_encoder"]["source"] == str(tiny_clip_folder)  # referenced, not copied
    assert not (out / "image_encoder").exists()
    assert config["preprocessing"]["image_size"] == 32
    loaded = bundles.load(str(out))
    frozen = load_file(out / "head.safetensors")
    assert all(not k.startswith("image_encoder") for k in frozen)
    assert loaded.model.image_encoder.width == 32


def test_init_starts_from_a_bundles_weights(shapes_data, tiny_text_folder, tmp_path):
    first = tmp_path / "first"
    train(options(shapes_data, first, tiny_text_folder, epochs=1))
    again = tmp_path / "again"
    train(options(shapes_data, again, tiny_text_folder, epochs=1, lr=0.0, seed=5, init=str(first)))
    a, b = load_file(first / "head.safetensors"), load_file(again / "head.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # lr 0: the head is exactly where --init put it
