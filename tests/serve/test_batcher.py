"""Micro-batching: requests waiting together share one forward pass, and one bad request fails alone."""

import asyncio

import pytest

from vqa_cli.errors import VQAError
from vqa_cli.serve.batcher import Batcher


class Engine:
    name = "fake"

    def __init__(self):
        self.passes = 0
        self.encoded = []  # the images of each encoding pass, in order

    def encode_images(self, images):
        self.passes += 1
        self.encoded.append(list(images))
        if "bad" in images:
            raise ValueError("cannot encode")
        return list(images)

    def answer(self, images, questions, image_index=None, top_k=1, explain=False):
        return [f"{images[i]}:{q}" for q, i in zip(questions, image_index)]


def test_concurrent_requests_share_a_pass_and_get_their_own_answers():
    engine = Engine()
    batcher = Batcher(engine, max_wait=0.2)

    async def main():
        return await asyncio.gather(*(batcher.answer(f"img{n}", [f"q{n}a", f"q{n}b"]) for n in range(8)))

    results = asyncio.run(main())
    batcher.close()
    assert results == [[f"img{n}:q{n}a", f"img{n}:q{n}b"] for n in range(8)]
    assert engine.passes <= 2


def test_a_failing_request_fails_alone():
    """The bad image shares a pass with the others, the pass fails, and the batcher retries each
    request on its own: the good ones still get their answers, and the worker keeps serving."""
    engine = Engine()
    batcher = Batcher(engine, max_wait=0.2)

    async def main():
        together = await asyncio.gather(
            batcher.answer("ok", ["q"]), batcher.answer("bad", ["q"]), batcher.answer("fine", ["r", "s"]),
            return_exceptions=True,
        )
        return together, await batcher.answer("later", ["q"])

    (good, bad, fine), later = asyncio.run(main())
    batcher.close()
    assert good == ["ok:q"] and fine == ["fine:r", "fine:s"]
    assert isinstance(bad, VQAError) and str(bad) == "cannot encode the image: ValueError: cannot encode"  # that request only, as a user error (4xx)
    assert engine.encoded[0] == ["ok", "bad", "fine"]  # they did share the pass that failed
    assert sorted(engine.encoded[1:4]) == [["bad"], ["fine"], ["ok"]]  # then each alone, once
    assert later == ["later:q"] and engine.encoded[4:] == [["later"]]  # the worker survived the failure


def test_the_worker_lives_on_after_an_unexpected_error():
    from vqa_cli.serve import batcher as batching

    class Engine:
        name = "e"

        def __init__(self):
            self.calls = 0

    engine = Engine()
    original = batching.answer_window

    def broken_once(*args, **kwargs):
        engine.calls += 1
        if engine.calls == 1:
            raise KeyError("a bug")
        return [(request, f"answer to {request.question}") for request in args[1]]

    batching.answer_window = broken_once
    try:
        b = Batcher(engine)

        async def ask(question):
            return await b.answer("image", [question])

        with pytest.raises(VQAError, match="the model failed on this request: KeyError"):
            asyncio.run(ask("first"))
        assert asyncio.run(ask("second")) == ["answer to second"]
        b.close()
    finally:
        batching.answer_window = original
