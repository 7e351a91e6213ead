"""The one answering stream: input order kept, each image decoded and encoded once, bad images become errors."""

from vqa_cli.errors import ImageError
from vqa_cli.run.stream import Request, answer_stream


class CountingEngine:
    """Answers each question with its image's name, and counts what it was asked to do."""

    def __init__(self):
        self.encoded, self.calls = [], 0

    def encode_images(self, images):
        self.encoded.extend(images)
        return list(images)

    def answer(self, images, questions, image_index=None, top_k=1, explain=False):
        self.calls += 1
        return [f"{images[i]}:{q}" for q, i in zip(questions, image_index)]


def flatten(windows):
    return [pair for window in windows for pair in window]


def test_order_is_kept_and_each_image_is_decoded_and_encoded_once():
    engine, decoded = CountingEngine(), []
    requests = [Request(f"img{n % 3}", f"q{n}") for n in range(10)]
    out = flatten(answer_stream(lambda: engine, requests, load=lambda name: decoded.append(name) or name.upper(), window=100))
    assert [r.question for r, _ in out] == [f"q{n}" for n in range(10)]
    assert [a for _, a in out] == [f"IMG{n % 3}:q{n}" for n in range(10)]
    assert sorted(decoded) == ["img0", "img1", "img2"]  # each decoded once
    assert sorted(engine.encoded) == ["IMG0", "IMG1", "IMG2"]  # and encoded once


def test_batches_cap_images_and_questions_per_forward_pass():
    engine = CountingEngine()
    requests = [Request("one", f"q{n}") for n in range(10)]
    out = flatten(answer_stream(lambda: engine, requests, load=str, batch_size=4))
    assert len(out) == 10 and engine.calls == 3  # 4 + 4 + 2 questions


def test_bad_images_and_bad_rows_become_errors_and_the_rest_are_answered():
    def load(name):
        if name == "broken":
            raise ImageError("not an image: broken")
        return name

    requests = [Request("ok", "a"), Request("broken", "b"), Request("", "c", error="missing image"), Request("ok", "d")]
    out = flatten(answer_stream(lambda: CountingEngine(), requests, load=load))
    assert [(r.error, a) for r, a in out] == [(None, "ok:a"), ("not an image: broken", None), ("missing image", None), (None, "ok:d")]


def test_no_model_is_loaded_when_nothing_can_be_answered():
    def never():
        raise AssertionError("loaded a model for nothing")

    out = flatten(answer_stream(never, [Request("", "q", error="missing image")]))
    assert out[0][1] is None
