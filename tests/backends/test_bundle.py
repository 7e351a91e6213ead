"""The bundle engine: the Engine protocol, and a question cache that changes nothing but speed."""

import torch

from vqa_cli.backends.base import Engine
from vqa_cli.backends.bundle import BundleEngine
from vqa_cli.store import bundle as bundles

QUESTIONS = ["what color is the circle?", "is there a red square?", "what color is the circle?", "how many objects are there?"]


def engine(path, cache_bytes=2**20) -> BundleEngine:
    return BundleEngine(bundles.load(str(path)), "cpu", torch.float32, cache_bytes=cache_bytes)


def test_bundle_engine_is_an_engine(tiny_bundle):
    e = engine(tiny_bundle)
    assert isinstance(e, Engine)
    assert e.model_info["kind"] == "cross-attention" and e.dtype_name == "float32"


def test_cached_questions_give_the_same_answers_and_each_is_encoded_once(tiny_bundle, scene_png):
    from vqa_cli.io.media import load_media

    cached, uncached = engine(tiny_bundle), engine(tiny_bundle, cache_bytes=0)
    calls = []
    original = cached.model.encode_text
    cached.model.encode_text = lambda ids, mask: calls.append(len(ids)) or original(ids, mask)
    image = load_media(str(scene_png))
    first = cached.answer(cached.encode_images([image]), QUESTIONS, top_k=3)
    encoded = len(calls)
    again = cached.answer(cached.encode_images([image]), QUESTIONS[::-1], top_k=3)
    plain = uncached.answer(uncached.encode_images([image]), QUESTIONS, top_k=3)
    assert 1 <= encoded <= 3 and len(calls) == encoded  # one pass per token length; the second call hit the cache
    assert [a.top_k for a in first] == [a.top_k for a in plain]
    assert [a.top_k for a in again] == [a.top_k for a in plain][::-1]


def test_the_cache_is_bounded_in_bytes_and_keeps_the_recently_used(tiny_bundle):
    e = engine(tiny_bundle)
    e.question_features(["a?"])
    one = e.cached_bytes
    assert one > 0
    e.clear_cache()
    e.cache_bytes = 2 * one  # room for two questions of that length
    e.question_features(["a?", "b?"])
    e.question_features(["a?"])  # a is now the most recent
    e.question_features(["c?"])
    assert list(e._questions) == ["a?", "c?"] and e.cached_bytes == 2 * one


def test_a_questions_features_do_not_depend_on_the_questions_encoded_with_it():
    """Floating-point sums depend on batch shapes (they do for the builtin model's MiniLM); questions are
    encoded in one shape only, so a Ray run's records do not depend on which worker met a question first."""
    import torch

    from vqa_cli.backends.registry import load_engine

    engine = load_engine("shapes", "cpu")
    questions = [f"is there a {c} {s}?" for c in ("red", "blue", "green") for s in ("circle", "square")] + ["how many objects are there?"]
    together = engine.session()._encode_questions(questions)
    for question in questions:
        alone = engine.session()._encode_questions([question])[question]
        assert torch.equal(alone, together[question]), question
    reordered = engine.session()._encode_questions(list(reversed(questions)) + ["what color is the circle?"] * 3)
    assert all(torch.equal(reordered[q], together[q]) for q in questions)
