"""Micro-batching: requests waiting together share one forward pass, and one bad request fails alone."""

import asyncio

import pytest

from vqa_cli.serve.batcher import Batcher


class Engine:
    name = "fake"

    def __init__(self):
        self.passes = 0

    def encode_images(self, images):
        self.passes += 1
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
    engine = Engine()
    batcher = Batcher(engine, max_wait=0.2)

    async def main():
        return await asyncio.gather(batcher.answer("ok", ["q"]), batcher.answer("bad", ["q"]), return_exceptions=True)

    good, bad = asyncio.run(main())
    batcher.close()
    assert good == ["ok:q"] and isinstance(bad, ValueError)
    with pytest.raises(ValueError):
        raise bad
