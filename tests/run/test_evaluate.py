"""`vqa eval`: streamed scoring, per family, with failed rows counted as wrong."""

import pytest
import torch

from vqa_cli.errors import InputError
from vqa_cli.io.media import load_media
from vqa_cli.run.evaluate import evaluate
from vqa_cli.backends.registry import load_engine


def write(path, text: str):
    path.write_text(text)
    return str(path)


def test_accuracy_per_family_and_failed_rows(tiny_bundle, scene_png, tmp_path):
    engine = load_engine(str(tiny_bundle), "cpu", torch.float32)
    image = engine.encode_images([load_media(str(scene_png))])
    given = engine.answer(image, ["what color is the circle?"])[0].answer
    wrong = next(a for a in engine.model.answers if a != given)
    data = write(tmp_path / "q.csv", "image,question,answer,family\n"
                 f"{scene_png},what color is the circle?,{given},colour\n"
                 f"{scene_png},what color is the circle?,{wrong},colour\n"
                 f"{tmp_path / 'missing.png'},what?,{given},other\n")
    report = evaluate(lambda: engine, data)
    assert report["rows"] == 3 and report["failed"] == 1
    assert report["families"] == {"colour": {"accuracy": 0.5, "rows": 2}, "other": {"accuracy": 0.0, "rows": 1}}
    assert report["accuracy"] == pytest.approx(1 / 3)
    assert report["model"] == "tiny"


def test_rows_without_a_gold_answer_are_refused_before_a_model_loads(scene_png, tmp_path):
    data = write(tmp_path / "q.csv", f"image,question\n{scene_png},what?\n")

    def never():
        raise AssertionError("loaded a model")

    with pytest.raises(InputError, match="row 1 has no gold answer"):
        evaluate(never, data)
