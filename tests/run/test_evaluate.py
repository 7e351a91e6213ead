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


class BrightnessEngine:
    """Says what a frame looks like: "yes" / "white" when it is bright, "no" / "black" when dark."""

    name, capabilities, why_not, domain = "brightness", frozenset(), {}, None

    def prepare(self, image):
        return image

    def encode_images(self, images):
        import numpy as np

        return [float(np.asarray(image).mean()) > 128 for image in images]

    def answer(self, bright, questions, image_index=None, top_k=1, explain=False):
        from vqa_cli.backends.base import Answer

        out = []
        for question, i in zip(questions, image_index or [0] * len(questions)):
            yes_no = question.startswith("is there")
            text = ("yes" if bright[i] else "no") if yes_no else ("white" if bright[i] else "black")
            out.append(Answer(question, text, 0.9 if bright[i] else 0.6))
        return out


@pytest.fixture
def blinking(tmp_path):
    """4 s at 10 fps, bright for the first second, dark for the next, bright again, then dark."""
    from PIL import Image

    from vqa_cli.io.video import write_video

    levels = [230 if (i // 10) % 2 == 0 else 20 for i in range(40)]
    write_video(tmp_path / "blink.mp4", [Image.new("RGB", (64, 48), (v, v, v)) for v in levels], fps=10)
    return tmp_path


def test_video_rows_are_scored_at_the_sampled_frames_with_the_temporal_iou_of_yes(blinking):
    import json

    from vqa_cli.io.video import Sampling

    def row(question, family, answers):
        return json.dumps({"image": "blink.mp4", "question": question, "answer": "-", "family": family,
                           "truth": {"fps": 10, "answers": answers}})

    rows = [
        row("is there a red circle?", "exist", ["yes"] * 11 + ["no"] * 19 + [None] * 5 + ["no"] * 5),  # at 1 s: still yes
        row("is there a red square?", "exist", ["no"] * 40),
        row("what color is it?", "query_color", ["white"] * 25 + ["black"] * 15),
        row("is there a blue circle?", "exist", [None] * 40),  # no frame allows an answer: not scored
    ]
    data = write(blinking / "rows.jsonl", "\n".join(rows) + "\n")
    report = evaluate(BrightnessEngine, data, video=Sampling(fps=2))
    # sampled at 0, 0.5, ..., 3.5 s, the model says yes yes no no yes yes no no
    assert report["model"] == "brightness" and report["rows"] == 3 and report["failed"] == 0
    assert report["accuracy"] == pytest.approx(2 / 3)  # yes, yes (wrong: never a red square), white
    video = report["video"]
    assert video["rows"] == 3 and video["accuracy"] == pytest.approx(2 / 3)
    assert video["frames"] == 7 + 8 + 8  # the frame at 3 s has no truth for the first question
    assert video["frame_accuracy"] == pytest.approx((4 + 4 + 5) / 23)
    # first question: yes on frames 0-9 and 20-29 against 0-10: 10 / 21; second: never truly yes: 0
    assert video["iou_questions"] == 2 and video["temporal_iou"] == pytest.approx((10 / 21 + 0.0) / 2)
    assert video["frames_out_of_domain"] == 0.0
    assert video["families"] == {
        "exist": {"rows": 2, "accuracy": 0.5, "frames": 15, "frame_accuracy": pytest.approx(8 / 15), "temporal_iou": pytest.approx(5 / 21)},
        "query_color": {"rows": 1, "accuracy": 1.0, "frames": 8, "frame_accuracy": pytest.approx(5 / 8)},
    }
    once_a_second = evaluate(BrightnessEngine, data, video=Sampling(fps=1))["video"]
    assert once_a_second["frames"] == 3 + 4 + 4  # 0, 1, 2, 3 s


def test_a_plain_answer_for_a_video_row_is_scored_against_its_gold_answer(blinking):
    data = write(blinking / "rows.csv", "image,question,answer,family\nblink.mp4,is there a red circle?,yes,exist\n")
    report = evaluate(BrightnessEngine, data)
    assert report["rows"] == 1 and report["accuracy"] == 1.0 and "video" not in report


def test_a_model_that_takes_the_video_whole_is_scored_by_its_one_answer(blinking):
    import json

    class WholeVideo(BrightnessEngine):
        capabilities = frozenset({"video"})

        def encode_images(self, videos):
            return [any(super(WholeVideo, self).encode_images(v.frames)) for v in videos]

    rows = [json.dumps({"image": "blink.mp4", "question": q, "answer": a, "family": "exist", "truth": {"fps": 10, "answers": [a] * 40}})
            for q, a in (("is there a red circle?", "yes"), ("is there a red square?", "no"))]
    report = evaluate(WholeVideo, write(blinking / "rows.jsonl", "\n".join(rows) + "\n"))
    assert report["rows"] == 2 and report["accuracy"] == 0.5  # "yes" twice: some frame is bright
    assert report["video"]["rows"] == 2 and report["video"]["frames"] == 0
