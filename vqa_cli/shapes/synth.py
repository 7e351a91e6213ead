"""Write a Shapes dataset: scene PNGs, questions.csv and the scenes' ground truth."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Callable

from .motion import clip_questions, sample_clip
from .paraphrase import paraphrase
from .questions import ask
from .render import render
from .world import sample_scene

QUESTION_COLUMNS = ("id", "image", "question", "answer", "family")


def scene_rng(seed: int, index: int) -> random.Random:
    """Each scene has its own stream, so scene i is the same whatever N is."""
    return random.Random(f"shapes-{seed}-{index}")


def synthesize(
    out: Path,
    images: int,
    questions_per_image: int,
    seed: int,
    advance: Callable[[], None] = lambda: None,
    paraphrased: bool = False,
    reword: float = 0.0,
    sampling: str = "balanced",
) -> int:
    """Render `images` scenes into out/images and pose their questions; return the question count.

    With paraphrased, each question is reworded with the held-out wordings (see paraphrase.py);
    with reword P, a share P of them with the training wordings. Answers are unchanged.
    sampling "uniform" draws questions uniformly from all the world spec allows (see questions.ask).
    """
    (out / "images").mkdir(parents=True, exist_ok=True)
    scenes = []
    written = 0
    with open(out / "questions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(QUESTION_COLUMNS)
        for i in range(images):
            rng = scene_rng(seed, i)
            scene = sample_scene(rng)
            name = f"images/scene_{i:06d}.png"
            render(scene).save(out / name, compress_level=1)
            for j, q in enumerate(ask(scene, questions_per_image, rng, sampling)):
                text = q.question
                if paraphrased:
                    text = paraphrase(text, q.family, rng)
                elif reword and rng.random() < reword:
                    text = paraphrase(text, q.family, rng, rules="training")
                writer.writerow((f"{i}-{j}", name, text, q.answer, q.family))
                written += 1
            scenes.append({"image": name, **scene.to_json()})
            advance()
    with open(out / "scenes.json", "w", encoding="utf-8") as f:
        json.dump({"seed": seed, "scenes": scenes}, f)
    return written


def synthesize_videos(out: Path, videos: int, questions_per_video: int, seed: int,
                      advance: Callable[[], None] = lambda: None, sampling: str = "balanced", crf: int = 23) -> int:
    """Render `videos` clips of the moving world into out/videos (H.264 MP4) and pose their questions in
    out/videos.jsonl, each with its truth at every frame; out/scenes.json holds every object's
    position at every frame. Returns the question count."""
    from ..backends.base import Answer
    from ..io.records import dumps
    from ..io.video import write_video
    from ..run.timeline import overall

    (out / "videos").mkdir(parents=True, exist_ok=True)
    clips, written = [], 0
    with open(out / "videos.jsonl", "w", encoding="utf-8") as f:
        for i in range(videos):
            rng = random.Random(f"shapes-video-{seed}-{i}")
            clip = sample_clip(rng)
            name = f"videos/clip_{i:06d}.mp4"
            write_video(out / name, (render(clip.scene(n)) for n in range(clip.frames)), clip.fps, crf)
            for j, q in enumerate(clip_questions(clip, questions_per_video, rng, sampling)):
                truth = clip.truth(q)
                if all(a is None for a in truth):
                    continue  # nothing in the clip allows an answer (the object it names is cut by the border)
                answer, _ = overall([Answer(q.question, a, 1.0) for a in truth if a is not None])
                row = {"id": f"{i}-{j}", "image": name, "question": q.question, "answer": answer, "family": q.family,
                       "truth": {"fps": clip.fps, "answers": truth}}
                f.write(dumps(row) + "\n")
                written += 1
            clips.append({"video": name, **clip.to_json()})
            advance()
    with open(out / "scenes.json", "w", encoding="utf-8") as f:
        json.dump({"seed": seed, "clips": clips}, f)
    return written
