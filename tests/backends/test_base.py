"""What every engine shares: ranked answers, scores and question checks."""

import pytest
import torch

from vqa_cli.backends.base import check_question, ranked_answers, score
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
