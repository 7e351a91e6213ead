"""What every engine shares: ranked answers, scores and question checks."""

import math

import pytest
import torch

from vqa_cli.backends.base import check_question, chosen, parse_choices, ranked_answers, score, vocabulary_indices
from vqa_cli.errors import InputError


def test_ranked_answers_are_sorted_and_capped_at_the_vocabulary():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    first, second = ranked_answers(["q1", "q2"], probs, ["a", "b", "c"], top_k=10)
    assert first.answer == "b" and [r["answer"] for r in first.top_k] == ["b", "c", "a"]
    assert second.answer == "a" and len(second.top_k) == 3
    assert first.score == pytest.approx(0.7)


def test_scores_keep_six_significant_digits_and_tiny_ones_survive():
    assert score(0.123456789) == 0.123457
    assert score(2.2e-12) == 2.2e-12


def test_questions_are_trimmed_and_empty_ones_refused():
    assert check_question("  what?  ") == "what?"
    with pytest.raises(InputError, match="empty question"):
        check_question("   ")


def test_choices_are_trimmed_and_deduplicated_and_empty_ones_refused():
    assert parse_choices(" yes | no |yes", "|") == ("yes", "no")
    assert parse_choices(["kitchen", "bath room"]) == ("kitchen", "bath room")
    for bad in ("", "a||b", [], ["a", 3]):
        with pytest.raises(InputError):
            parse_choices(bad, "|")


def test_an_answer_among_choices_is_a_softmax_over_the_set_whatever_their_order():
    first = chosen("q", {"no": 1.0, "yes": 3.0, "maybe": -2.0})
    again = chosen("q", {"maybe": -2.0, "yes": 3.0, "no": 1.0})
    assert first.answer == "yes" and first.top_k == again.top_k
    assert sum(r["score"] for r in first.top_k) == pytest.approx(1.0, abs=1e-5)
    assert first.score == pytest.approx(1 / (1 + math.exp(-2) + math.exp(-5)), rel=1e-5)


def test_choices_outside_the_vocabulary_name_themselves_and_the_valid_ones():
    assert vocabulary_indices(("Yes", " no"), ["no", "yes", "red"], "m") == [1, 0]
    with pytest.raises(InputError, match=r"m cannot answer 'maybe'.*it knows: no, yes, red"):
        vocabulary_indices(("yes", "maybe"), ["no", "yes", "red"], "m")
