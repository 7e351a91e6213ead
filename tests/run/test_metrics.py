import pytest

from vqa_cli.run.metrics import gold_answers, normalize, soft_accuracy


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Yes.", "yes"),
        ("The Red Car!", "red car"),
        ("ten.", "10"),
        ("t-shirt", "t shirt"),
        ("100,978", "100978"),
        ("2.5", "2.5"),
        ("  a  dog ", "dog"),
        ("two", "2"),
        ("dont", "don't"),
    ],
)
def test_official_normalisation(raw, normalized):
    assert normalize(raw) == normalized


def test_soft_accuracy_counts_agreeing_humans():
    assert soft_accuracy("red", ["red"] * 10) == 1.0
    assert soft_accuracy("blue", ["red"] * 10) == 0.0
    # 3 of 10 said "blue": leaving out one of them leaves 2 matches (2/3), else 3 (1).
    assert soft_accuracy("blue", ["blue"] * 3 + ["red"] * 7) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)
    # 1 of 10: 0 matches when left out, else 1/3.
    assert soft_accuracy("Blue!", ["blue"] + ["red"] * 9) == pytest.approx(9 * (1 / 3) / 10)


def test_single_answer_is_exact_match_after_normalisation():
    assert soft_accuracy("Yes.", ["yes"]) == 1.0
    assert soft_accuracy("no", ["yes"]) == 0.0


def test_gold_answers_formats():
    assert gold_answers({"answers": ["a", "b"]}) == ["a", "b"]
    assert gold_answers({"answers": "cat | dog|cat"}) == ["cat", "dog", "cat"]
    assert gold_answers({"answer": "red"}) == ["red"]
    assert gold_answers({"answer": ""}) == []
