"""The one answering stream: input order kept, each image decoded and encoded once, bad images become errors."""

from vqa_cli.errors import ImageError
from vqa_cli.run.stream import Request, answer_stream


class CountingEngine:
    """Answers each question with its image's name, and counts what it was asked to do."""

    def __init__(self):
        self.encoded, self.calls = [], 0

    def prepare(self, image):
        return image

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


class FlakyEngine:
    """Fails the whole pass when one image or one question in it is bad, as a tokenizer or a model does."""

    capabilities, why_not, domain = frozenset(), {}, None

    def encode_images(self, images):
        if "bad image" in images:
            raise struct_error("unpack requires a buffer of 4 bytes")
        return list(images)

    def answer(self, embeds, questions, image_index, top_k=1, explain=False):
        if any("\ud800" in q for q in questions):
            raise TypeError("TextEncodeInput must be Union[...]")
        return [f"{embeds[i]}: {q}" for q, i in zip(questions, image_index)]


def struct_error(message):
    import struct

    return struct.error(message)


def test_a_failing_image_or_question_fails_its_request_alone():
    from vqa_cli.run.stream import Request, answer_window

    batch = [Request("a", "one"), Request("b", "two"), Request("a", "lone \ud800"), Request("c", "four"), Request("b", "five")]
    images = {"a": "image a", "b": "bad image", "c": "image c"}
    answered = answer_window(FlakyEngine(), batch, images, top_k=1, batch_size=64)
    assert [answer for _, answer in answered] == ["image a: one", None, None, "image c: four", None]
    errors = [request.error for request, _ in answered]
    assert errors[0] is None and errors[3] is None
    assert errors[1] == errors[4] == "cannot encode the image: error: unpack requires a buffer of 4 bytes"
    assert errors[2].startswith("cannot answer the question: TypeError")


def test_an_image_loader_that_raises_anything_fails_that_image_only():
    from vqa_cli.run.stream import Request, decoded_windows

    def load(name):
        if name == "weird":
            raise struct_error("bad EXIF")
        return name.upper()

    [(_, images)] = decoded_windows([Request("ok", "q"), Request("weird", "q")], 10, load)
    assert images["ok"] == "OK" and "bad EXIF" in str(images["weird"])


def test_once_the_engine_is_loaded_the_reading_thread_prepares_the_images():
    import threading

    from vqa_cli.run.stream import Request, answer_stream

    class Preparing(CountingEngine):
        def __init__(self):
            super().__init__()
            self.threads = []

        def prepare(self, image):
            if image.startswith("prepared"):  # idempotent, as the protocol says
                return image
            self.threads.append(threading.current_thread().name)
            return f"prepared {image}"

    engine = Preparing()
    requests = [Request(f"img{n}", "q") for n in range(40)]
    answered = [pair for window in answer_stream(lambda: engine, requests, window=4, prefetch=1, load=str) for pair in window]
    assert len(answered) == 40 and all(answer is not None for _, answer in answered)
    # the windows read before the engine existed are prepared where they are answered; all later ones ahead of it
    assert engine.threads.count("vqa-image-loader") >= 30 and set(engine.threads) <= {"vqa-image-loader", "MainThread"}
    assert all(str(image).startswith("prepared img") for image in engine.encoded)


class AnsweringEngine(CountingEngine):
    """Answers each question with its image's name, as an Answer."""

    def answer(self, images, questions, image_index=None, top_k=1, explain=False):
        from vqa_cli.backends.base import Answer

        self.calls += 1
        return [Answer(q, str(images[i]), 0.9) for q, i in zip(questions, image_index)]


def a_video(name: str, frames: list[str]):
    from vqa_cli.io.video import Video

    return Video(name, float(len(frames)), 1.0, 8, 8, [float(t) for t in range(len(frames))], frames)


def test_each_frame_of_a_video_is_encoded_once_for_all_its_questions_and_folded_into_a_timeline():
    engine = AnsweringEngine()
    videos = {"clip": a_video("clip", ["no", "no", "yes", "no"])}
    requests = [Request("clip", "is it?"), Request("still", "what?"), Request("clip", "and now?")]
    out = flatten(answer_stream(lambda: engine, requests, load=lambda name: videos.get(name, name)))
    assert sorted(engine.encoded) == ["no", "no", "no", "still", "yes"]  # 4 frames and 1 image, each once
    first, image, last = (answer for _, answer in out)
    assert image.answer == "still" and not hasattr(image, "segments")
    assert first.answer == "yes" and [f["answer"] for f in first.frames] == ["no", "no", "yes", "no"]
    assert [(s["start"], s["end"], s["answer"]) for s in first.segments] == [(0, 2, "no"), (2, 3, "yes"), (3, 4, "no")]
    assert last.question == "and now?" and last.frames == first.frames


def test_a_window_closes_once_its_videos_hold_the_frame_budget():
    from vqa_cli.run.stream import decoded_windows

    videos = {f"v{n}": a_video(f"v{n}", ["f"] * 5) for n in range(5)}
    requests = [Request(f"v{n}", "q") for n in range(5)] + [Request("image", "q")]
    windows = list(decoded_windows(requests, 100, lambda name: videos.get(name, name), budget=10))
    assert [[r.image for r in batch] for batch, _ in windows] == [["v0", "v1"], ["v2", "v3"], ["v4", "image"]]


def test_a_frame_that_fails_fails_its_video_request_alone():
    class Picky(AnsweringEngine):
        def encode_images(self, images):
            if "bad" in images:
                raise RuntimeError("cannot encode this frame")
            return super().encode_images(images)

    videos = {"clip": a_video("clip", ["ok", "bad"]), "other": a_video("other", ["ok", "ok"])}
    out = flatten(answer_stream(lambda: Picky(), [Request("clip", "q"), Request("other", "q")], load=videos.get))
    (broken, none), (fine, answer) = out
    assert none is None and "cannot encode this frame" in broken.error
    assert fine.error is None and answer.answer == "ok"
