"""The training loop: a tiny run lowers the loss and writes a bundle that loads; with scenes it learns objects."""

import pytest
from safetensors.torch import load_file

from vqa_cli.store import bundle as bundles
from vqa_cli.train.loop import train
from vqa_cli.train.options import TrainOptions


def options(data, out, text, **overrides) -> TrainOptions:
    base = dict(
        data=str(data / "questions.csv"), out=str(out), text_encoder=str(text), image_size=32,
        epochs=6, images_per_batch=4, eval_every=5, warmup_steps=2, lr=3e-3, width=32, layers=1,
        image_layers=1, heads=2, val_fraction=0.2, seed=3,
    )
    base.update(overrides)
    return TrainOptions(**base)


def test_tiny_training_lowers_the_loss_and_writes_a_bundle_that_loads(shapes_data, tiny_text_folder, tmp_path):
    summary = train(options(shapes_data, tmp_path / "bundle", tiny_text_folder))
    losses = [entry["train_loss"] for entry in summary["history"]]
    assert losses[-1] < losses[0]
    loaded = bundles.load(str(tmp_path / "bundle"))
    assert set(loaded.model.answers) <= {"yes", "no", "0", "1", "2", "3", "4", "5", "6", "left", "right", "top",
                                         "bottom", "small", "large", "circle", "square", "triangle", "red", "green",
                                         "blue", "yellow", "purple", "orange", "gray", "cyan"}
    config = bundles.read_config(tmp_path / "bundle")
    assert config["image_encoder"]["saved_inside"] and config["provenance"]["validation"]["step"] > 0
    assert not (tmp_path / "bundle.checkpoint").exists()
    assert loaded.model.config.objects == 0


def test_training_with_scenes_learns_to_find_objects(shapes_data, tiny_text_folder, tmp_path, monkeypatch):
    """The detector and object targets train from scenes.json; validation answers from detected objects.

    At each validation the detector is also measured on the images it trains on (88 annotated
    objects; the 5 held-out images hold too few to bound). A detection finds an object within
    MATCH_PX (6 px) of its centre in a 256 px scene, which 8 random guesses do for about 1% of
    objects. By the end it finds over 12% of them (about 25% in practice) with false detections
    under a third of the objects (about 20 of 88), where the first validation finds about none with
    about 45 false; without the detection loss it stays there."""
    from vqa_cli.train import loop

    evaluate, on_training_images = loop.evaluate_split, []

    def evaluate_also_on_the_training_images(run, images):
        on_training_images.append({**evaluate(run, run.train_images)["detection"], "objects": int(run.data.objects.mask[run.train_images].sum())})
        return evaluate(run, images)

    monkeypatch.setattr(loop, "evaluate_split", evaluate_also_on_the_training_images)
    out = tmp_path / "objects"
    summary = train(options(shapes_data, out, tiny_text_folder, scenes=str(shapes_data / "scenes.json"), epochs=20, eval_every=20))
    first, last = summary["history"][0], summary["history"][-1]
    assert last["train_loss"] < first["train_loss"]
    assert {"found", "false", "error_px"} <= set(last["detection"])
    start, end = on_training_images[0], on_training_images[-1]
    objects = end["objects"]
    assert objects >= 60 and len(on_training_images) == len(summary["history"])
    detections = f"found {end['found']:.0%} of {objects} objects with {end['false']} false detections (at first {start['found']:.0%}, {start['false']} false)"
    assert end["found"] >= 0.12, detections
    assert end["false"] <= objects / 3, detections
    assert end["found"] >= start["found"] + 0.1 and end["false"] < start["false"], detections
    config = bundles.read_config(out)
    assert config["head"]["objects"] == 8
    assert "nearest_color" in config["provenance"]["object_targets"]
    loaded = bundles.load(str(out))
    heads = load_file(out / "head.safetensors")
    assert any(k.startswith("objects.finder") for k in heads)
    assert not any("targets" in k for k in heads)  # the auxiliary classifiers are for training only
    assert loaded.model.config.objects == 8


def test_objects_without_scenes_is_a_one_line_error(shapes_data, tiny_text_folder, tmp_path):
    from vqa_cli.errors import InputError

    with pytest.raises(InputError, match="--objects needs --scenes"):
        train(options(shapes_data, tmp_path / "x", tiny_text_folder, objects=4))


@pytest.mark.parametrize("fusion", ["early", "late", "hybrid"])
def test_every_fusion_trains_and_round_trips_exactly(fusion, shapes_data, tiny_text_folder, tmp_path):
    """A few steps with objects; the saved bundle gives the very logits of a save-and-load of itself."""
    import torch

    from tests.store.test_bundle import answer_logits

    out = tmp_path / fusion
    train(options(shapes_data, out, tiny_text_folder, fusion=fusion, scenes=str(shapes_data / "scenes.json"), steps=6, eval_every=3))
    first = bundles.load(str(out))
    assert first.model.config.fusion == fusion and first.model.config.objects == 8
    bundles.save(first, tmp_path / "again")
    assert torch.equal(answer_logits(first), answer_logits(bundles.load(str(tmp_path / "again"))))


@pytest.mark.parametrize("rows", ["", "/nowhere/a.png,what?,red\n", "a.png,what?,red\na.png,which?,blue\n"])
def test_training_data_about_fewer_than_two_images_is_one_line(tmp_path, rows):
    from typer.testing import CliRunner

    from vqa_cli.cli import app

    data = tmp_path / "rows.csv"
    data.write_text("image,question,answer\n" + rows)
    result = CliRunner().invoke(app, ["train", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "needs rows about at least 2 images" in result.stderr and "Traceback" not in result.output
