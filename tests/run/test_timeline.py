"""A video's answer to one question: per-frame answers, the segments where each holds, one answer for the whole video."""

import pytest

from vqa_cli.backends.base import Answer
from vqa_cli.run.timeline import VideoAnswer, overall, segments, video_answer

INFO = {"duration": 5.0, "fps": 10.0, "width": 64, "height": 48, "sampled": 5}


def said(*pairs, question="is there a red circle?", **fields) -> list[Answer]:
    return [Answer(question, text, value, **fields) for text, value in pairs]


def test_one_yes_frame_makes_a_yes_no_question_yes_scored_by_its_best_yes_frame():
    answers = said(("no", 0.99), ("yes", 0.6), ("no", 0.95), ("yes", 0.7), ("no", 0.9))
    assert overall(answers) == ("yes", 0.7)


def test_a_yes_no_question_never_answered_yes_is_no():
    assert overall(said(("no", 0.8), ("no", 0.6))) == ("no", pytest.approx(0.7))


def test_other_questions_get_the_answer_most_frames_give_scored_by_their_mean():
    answers = said(("red", 0.9), ("blue", 0.5), ("blue", 0.7), ("red", 0.3), ("blue", 0.6), question="what color?")
    assert overall(answers) == ("blue", pytest.approx(0.6))


def test_a_yes_among_other_answers_is_just_one_vote():
    answers = said(("2", 0.5), ("yes", 0.99), ("2", 0.4), question="how many circles are there?")
    assert overall(answers) == ("2", pytest.approx(0.45))


def test_a_tie_goes_to_the_answer_with_the_larger_summed_score():
    answers = said(("red", 0.4), ("blue", 0.5), ("red", 0.4), ("blue", 0.5), question="what color?")
    assert overall(answers) == ("blue", pytest.approx(0.5))
    assert overall(list(reversed(answers)))[0] == "blue"  # whichever comes first
    higher_first = said(("red", 0.9), ("red", 0.2), ("blue", 0.5), ("blue", 0.5), question="what color?")
    assert overall(higher_first)[0] == "red"  # 1.1 against 1.0, though blue's frames are surer on average


def test_neighbouring_equal_answers_merge_and_each_segment_ends_where_the_next_begins():
    out = segments([0, 1, 2, 3, 4, 5], ["no", "no", "yes", "yes", "no", "no"], until=6.5)
    assert out == [
        {"start": 0, "end": 2, "answer": "no"},
        {"start": 2, "end": 4, "answer": "yes"},
        {"start": 4, "end": 6.5, "answer": "no"},
    ]


def test_the_last_segment_ends_at_the_end_of_the_window_asked_for():
    assert segments([2.0, 2.5, 3.0], ["red", "red", "red"], until=3.25) == [{"start": 2.0, "end": 3.25, "answer": "red"}]
    assert segments([0.0, 1.0], ["a", "b"], until=1.23456) == [
        {"start": 0.0, "end": 1.0, "answer": "a"}, {"start": 1.0, "end": 1.235, "answer": "b"}]
    assert segments([], [], until=4.0) == []


def test_a_video_answer_lists_its_frames_in_time_order():
    answers = said(("no", 0.9), ("yes", 0.8), ("yes", 0.6), ("no", 0.7))
    out = video_answer("is there a red circle?", INFO, [0.0, 1.0, 2.0, 3.0], answers, until=4.5)
    assert isinstance(out, VideoAnswer) and out.question == "is there a red circle?"
    assert (out.answer, out.score) == ("yes", 0.8) and out.top_k == [{"answer": "yes", "score": 0.8}]
    assert out.frames == [
        {"t": 0.0, "answer": "no", "score": 0.9}, {"t": 1.0, "answer": "yes", "score": 0.8},
        {"t": 2.0, "answer": "yes", "score": 0.6}, {"t": 3.0, "answer": "no", "score": 0.7},
    ]
    assert [(s["start"], s["end"], s["answer"]) for s in out.segments] == [(0.0, 1.0, "no"), (1.0, 3.0, "yes"), (3.0, 4.5, "no")]
    assert out.video == INFO


def test_a_frame_lists_its_ranked_answers_only_when_it_has_several():
    ranked = [{"answer": "red", "score": 0.7}, {"answer": "blue", "score": 0.2}]
    answers = [Answer("what color?", "red", 0.7, ranked), Answer("what color?", "blue", 0.9, [{"answer": "blue", "score": 0.9}]),
               Answer("what color?", "red", 0.8)]
    out = video_answer("what color?", INFO, [0.0, 0.5, 1.0], answers, until=1.5)
    assert out.frames[0]["top_k"] == ranked
    assert "top_k" not in out.frames[1] and "top_k" not in out.frames[2]


def test_the_video_is_in_domain_when_most_of_its_frames_are():
    def domain(*flags):
        answers = [Answer("q?", "no", 0.5, image_in_domain=flag, question_in_domain=True) for flag in flags]
        return video_answer("q?", INFO, [float(t) for t in range(len(flags))], answers, until=9.0)

    assert domain(True, False, True).image_in_domain is True
    assert domain(False, False, True).image_in_domain is False
    assert domain(True, None, True).image_in_domain is None  # a model without domain statistics
    assert domain(True, False, True).frames_in_domain == [True, False, True]
    assert domain(True, True).question_in_domain is True


def test_video_fields_leave_out_the_frames_unless_asked():
    out = video_answer("q?", INFO, [0.0, 1.0], said(("no", 0.5), ("no", 0.7)), until=2.0)
    assert out.video_fields(frames=False) == {"video": INFO, "segments": [{"start": 0.0, "end": 2.0, "answer": "no"}]}
    fields = out.video_fields()
    assert list(fields) == ["video", "frames", "segments"] and fields["frames"] == out.frames
    whole = VideoAnswer("q?", "no", 0.5, video=INFO)  # a model that took the video whole has no frames
    assert "frames" not in whole.video_fields(frames=True)
