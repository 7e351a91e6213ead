"""A video's answer to one question: the per-frame answers, the segments where each holds, and one
answer for the whole video.

The rule for the whole video, documented in the README:
  - a yes/no question (every frame answered "yes" or "no") is "yes" when any frame says yes,
    scored by the best such frame;
  - any other question gets the answer most frames give (a tie goes to the larger summed
    score), scored by the mean score of the frames that give it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backends.base import Answer, score


@dataclass
class VideoAnswer(Answer):
    video: dict = field(default_factory=dict)  # Video.info(): duration, fps, width, height, sampled
    frames: list[dict] | None = None  # [{"t", "answer", "score"}] in time order; None when the model took the video whole
    segments: list[dict] = field(default_factory=list)  # [{"start", "end", "answer"}]
    frames_in_domain: list[bool | None] = field(default_factory=list, repr=False)  # per frame; not in the JSON

    def peak(self, text: str) -> float:
        """The highest probability any frame gives the answer `text` (0 when none ranks it)."""
        def chance(frame: dict) -> float:
            ranked = frame.get("top_k") or [{"answer": frame["answer"], "score": frame["score"]}]
            return next((r["score"] for r in ranked if r["answer"] == text), 0.0)

        return max((chance(frame) for frame in self.frames or ()), default=0.0)

    def video_fields(self, frames: bool = True) -> dict:
        """What a video adds to an answer's JSON: the video, its segments, and (asked for, and when
        the model answered frame by frame) the per-frame answers."""
        out = {"video": self.video}
        if frames and self.frames is not None:
            out["frames"] = self.frames
        out["segments"] = self.segments
        return out


def video_answer(question: str, info: dict, times: list[float], answers: list[Answer], until: float) -> VideoAnswer:
    """One question's answer for a video, from its answers at the sampled `times`; the last
    segment ends at `until` (the video's end, or --end)."""
    answer, value = overall(answers)
    frames = [{"t": t, "answer": a.answer, "score": a.score} for t, a in zip(times, answers)]
    for frame, a in zip(frames, answers):
        if len(a.top_k) > 1:
            frame["top_k"] = a.top_k
    domains = [a.image_in_domain for a in answers]
    return VideoAnswer(
        question, answer, value, [{"answer": answer, "score": value}],
        image_in_domain=None if None in domains else sum(domains) * 2 >= len(domains),  # most frames look like its world
        question_in_domain=answers[0].question_in_domain,
        video=info, frames=frames, segments=segments(times, [a.answer for a in answers], until), frames_in_domain=domains,
    )


def whole_video_answer(answer: Answer, info: dict) -> VideoAnswer:
    """The answer of a model that took the video whole: no frames, no segments."""
    return VideoAnswer(answer.question, answer.answer, answer.score, answer.top_k, answer.attention,
                       answer.image_in_domain, answer.question_in_domain, video=info)


def overall(answers: list[Answer]) -> tuple[str, float]:
    """(answer, score) for the whole video, by the rule above."""
    said = [a.answer for a in answers]
    if "yes" in said and set(said) <= {"yes", "no"}:
        return "yes", max(a.score for a in answers if a.answer == "yes")
    tally: dict[str, list[float]] = {}
    for a in answers:
        tally.setdefault(a.answer, []).append(a.score)
    best = max(tally, key=lambda text: (len(tally[text]), sum(tally[text])))
    return best, score(sum(tally[best]) / len(tally[best]))


def segments(times: list[float], said: list[str], until: float) -> list[dict]:
    """Neighbouring frames with the same answer, merged; each segment ends where the next begins,
    and the last at `until` (the video's duration, or the end of the window asked for)."""
    out: list[dict] = []
    for t, answer in zip(times, said):
        if out and out[-1]["answer"] == answer:
            continue
        if out:
            out[-1]["end"] = t
        out.append({"start": t, "end": None, "answer": answer})
    if out:
        out[-1]["end"] = round(until, 3)
    return out
