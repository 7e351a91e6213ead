"""`vqa batch`: formats, pass-through columns, bad rows, resume, shards, batch-size invariance."""

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vqa_cli.cli import app
from vqa_cli.shapes.render import render
from vqa_cli.shapes.world import sample_scene

runner = CliRunner()
QUESTIONS = ["what color is the circle?", "is there a red square?", "how many objects are there?", "what shape is the blue object?"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """6 scene images and 24 rows (4 questions each), interleaved so images repeat out of order."""
    root = tmp_path_factory.mktemp("batch")
    (root / "img").mkdir()
    rng = random.Random(0)
    for i in range(6):
        render(sample_scene(rng)).save(root / "img" / f"s{i}.png")
    rows = [
        {"id": f"r{n:02d}", "image": f"img/s{n % 6}.png", "question": QUESTIONS[n // 6], "note": f"n{n}"}
        for n in range(24)
    ]
    with open(root / "rows.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "image", "question", "note"])
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "rows.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return root, rows


def batch(*args, input=None):
    return runner.invoke(app, ["batch", *[str(a) for a in args]], input=input)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_csv_and_jsonl_inputs_give_the_same_records(dataset, tiny_bundle):
    root, rows = dataset
    from_csv = batch(root / "rows.csv", "-m", tiny_bundle)
    from_jsonl = batch(root / "rows.jsonl", "-m", tiny_bundle)
    assert from_csv.exit_code == 0, from_csv.output
    assert records(from_csv.stdout) == records(from_jsonl.stdout)
    out = records(from_csv.stdout)
    assert [r["id"] for r in out] == [r["id"] for r in rows]  # input order
    assert all(r["error"] is None and isinstance(r["score"], float) for r in out)
    assert [r["note"] for r in out] == [r["note"] for r in rows]  # pass-through column
    assert "answered 24, failed 0" in from_csv.stderr


def test_stdin_input_with_image_root(dataset, tiny_bundle):
    root, _ = dataset
    text = (root / "rows.jsonl").read_text()
    result = batch("-", "--input-format", "jsonl", "--image-root", root, "-m", tiny_bundle, "-q", input=text)
    assert result.exit_code == 0, result.output
    assert len(records(result.stdout)) == 24
    assert result.stderr == ""


def test_output_formats(dataset, tiny_bundle, tmp_path):
    root, _ = dataset
    as_jsonl = records(batch(root / "rows.csv", "-m", tiny_bundle, "--top-k", "2").stdout)
    as_json = json.loads(batch(root / "rows.csv", "-m", tiny_bundle, "--top-k", "2", "--format", "json").stdout)
    assert as_json == as_jsonl
    assert len(as_json[0]["top_k"]) == 2
    out = tmp_path / "out.csv"
    result = batch(root / "rows.csv", "-m", tiny_bundle, "--format", "csv", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    table = list(csv.DictReader(out.open()))
    assert [r["answer"] for r in table] == [r["answer"] for r in as_jsonl]
    assert list(table[0]) == ["id", "image", "question", "answer", "score", "image_in_domain", "question_in_domain", "note", "error", "video", "segments"]


def test_bad_rows_become_error_records_and_the_rest_are_answered(dataset, tiny_bundle, tmp_path):
    root, _ = dataset
    (tmp_path / "junk.png").write_bytes(b"not a png")
    good = (root / "img" / "s0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 3])
    (tmp_path / "ok.png").write_bytes(good)
    lines = [
        {"image": "ok.png", "question": "what color is the circle?"},
        {"image": "missing.png", "question": "what?"},
        {"image": "junk.png", "question": "what?"},
        {"image": "cut.png", "question": "what?"},
        {"image": "ok.png", "question": "  "},
        "{broken json",
        {"image": "ok.png", "question": "is there a red square?"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    result = batch(path, "-m", tiny_bundle)
    assert result.exit_code == 1
    out = records(result.stdout)
    assert [r["id"] for r in out] == [1, 2, 3, 4, 5, 6, 7]
    errors = [r["error"] for r in out]
    assert errors[0] is None and errors[-1] is None
    assert "not found" in errors[1] and "not an image" in errors[2] and errors[3] and "empty question" in errors[4]
    assert "line 6" in errors[5]
    assert "answered 2, failed 5" in result.stderr
    assert "Traceback" not in result.stderr

    fast = batch(path, "-m", tiny_bundle, "--fail-fast")
    assert fast.exit_code == 1
    assert len(records(fast.stdout)) == 2


def test_resume_after_a_kill_mid_line(dataset, tiny_bundle, tmp_path):
    root, _ = dataset
    full = batch(root / "rows.csv", "-m", tiny_bundle)
    expected = records(full.stdout)
    # A run killed after 10 records, in the middle of writing the 11th.
    out = tmp_path / "out.jsonl"
    text = full.stdout.splitlines(keepends=True)
    out.write_text("".join(text[:10]) + text[10][:25])
    resumed = batch(root / "rows.csv", "-m", tiny_bundle, "-o", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "10 already done" in resumed.stderr
    got = records(out.read_text())
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == sorted(json.dumps(r, sort_keys=True) for r in expected)
    again = batch(root / "rows.csv", "-m", tiny_bundle, "-o", out, "--resume")
    assert "answered 0" in again.stderr and records(out.read_text()) == got


def test_shards_together_equal_the_whole(dataset, tiny_bundle):
    root, _ = dataset
    whole = records(batch(root / "rows.csv", "-m", tiny_bundle).stdout)
    parts = []
    for k in range(3):
        result = batch(root / "rows.csv", "-m", tiny_bundle, "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        parts += records(result.stdout)
    assert len(parts) == len(whole)
    assert sorted(parts, key=lambda r: r["id"]) == sorted(whole, key=lambda r: r["id"])
    assert batch(root / "rows.csv", "--shard", "3/3").exit_code == 2  # a usage error


def test_answers_do_not_depend_on_batch_size(dataset, tiny_bundle):
    root, rows = dataset
    runs = []
    for n in (1, 5, 64):
        result = batch(root / "rows.csv", "-m", tiny_bundle, "--batch-size", n)
        assert result.exit_code == 0, result.output  # README: 0 when every row was answered
        assert "answered 24, failed 0" in result.stderr
        out = records(result.stdout)
        assert [r["id"] for r in out] == [r["id"] for r in rows] and all(r["error"] is None for r in out)
        runs.append(out)
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert a["answer"] == b["answer"]
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    # The other documented codes, on the same run: 1 once a row fails, 2 for a bad option value.
    with_a_bad_row = (root / "rows.csv").read_text() + "img/missing.png,what color is the circle?,r99,n99\n"
    failed = batch("-", "--input-format", "csv", "--image-root", root, "-m", tiny_bundle, "--batch-size", 5, input=with_a_bad_row)
    assert failed.exit_code == 1, failed.output
    assert "answered 24, failed 1" in failed.stderr and records(failed.stdout)[-1]["error"].startswith("image not found")
    assert batch(root / "rows.csv", "-m", tiny_bundle, "--batch-size", 0).exit_code == 2


def test_bom_quoted_newlines_and_whitespace(dataset, tiny_bundle, tmp_path):
    root, _ = dataset
    content = '\ufeffimage , question ,id\n img/s0.png ,"what color\nis the circle?  ",7\n'
    path = tmp_path / "odd.csv"
    path.write_text(content, encoding="utf-8")
    result = batch(path, "--image-root", root, "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    (rec,) = records(result.stdout)
    assert rec["id"] == 7 and rec["image"] == "img/s0.png" and rec["question"] == "what color\nis the circle?"


def test_sigkill_then_resume_answers_every_row_exactly_once(dataset, tiny_bundle, tmp_path):
    """A real process killed with SIGKILL mid-run, then resumed."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root, _ = dataset
    rows = tmp_path / "many.csv"
    with open(rows, "w", encoding="utf-8") as f:
        f.write("image,question\n")
        for n in range(1500):
            f.write(f"{root}/img/s{n % 6}.png,{QUESTIONS[n % 4]}\n")
    out = tmp_path / "out.jsonl"
    vqa = str(Path(sys.executable).parent / "vqa")
    cmd = [vqa, "batch", str(rows), "-m", str(tiny_bundle), "-o", str(out), "--batch-size", "7", "-q"]
    process = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 8_000):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(out.read_bytes().splitlines())
    assert 0 < done_before < 1500, "the kill should land mid-run"
    subprocess.run(cmd + ["--resume"], check=True, stderr=subprocess.DEVNULL)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == list(range(1, 1501))


def test_resume_refuses_ids_that_repeat_and_a_plain_run_answers_them(dataset, tiny_bundle, tmp_path):
    root, _ = dataset
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in [
        {"image": str(root / "img/s0.png"), "question": "is there a red square?"},  # id 1 by default
        {"id": 1, "image": str(root / "img/s1.png"), "question": "is there a red square?"},  # the same id, given
    ]))
    plain = batch(rows, "-m", tiny_bundle)
    assert plain.exit_code == 0 and len(records(plain.stdout)) == 2
    out = tmp_path / "out.jsonl"
    resumed = batch(rows, "-m", tiny_bundle, "-o", out, "--resume")
    assert resumed.exit_code == 1 and "id 1 repeats (row 2)" in resumed.stderr


@pytest.mark.parametrize("args, message", [
    (["--resume"], "--resume needs -o FILE"),
    (["--shard", "3/3"], "--shard 3/3"),
    (["--workers", "2"], "--workers and --gpus-per-worker need --engine ray"),
    (["--engine", "ray", "--shard", "0/2"], "does not go with --engine ray"),
])
def test_bad_combinations_of_options_are_usage_errors(dataset, args, message):
    root, _ = dataset
    result = batch(root / "rows.csv", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_the_output_is_never_the_input_a_folder_or_in_a_missing_folder(dataset, tmp_path):
    root, _ = dataset
    copy = tmp_path / "rows.csv"
    copy.write_bytes((root / "rows.csv").read_bytes())
    for out, message in ((copy, "is the input file"), (tmp_path, "is a folder"), (tmp_path / "no" / "x.jsonl", "does not exist"),
                         ("/dev/full", "No space left")):
        result = batch(copy, "-o", out, "-m", tmp_path / "no-such-model")  # refused before the model would fail to load
        assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert copy.read_bytes() == (root / "rows.csv").read_bytes()  # the input untouched


def test_a_malformed_limit_in_the_environment_is_a_usage_error_not_a_row_error(dataset, tiny_bundle):
    root, _ = dataset
    result = runner.invoke(app, ["batch", str(root / "rows.csv"), "-m", str(tiny_bundle)], env={"VQA_MAX_PIXELS": "abc"})
    assert result.exit_code == 2 and result.stdout == "" and "VQA_MAX_PIXELS must be a positive whole number" in result.stderr


def test_rows_answer_among_their_own_choices_or_the_default(dataset, tmp_path):
    root, _ = dataset
    rows = tmp_path / "choices.jsonl"
    image = root / "img" / "s0.png"
    rows.write_text("".join(json.dumps(row) + "\n" for row in [
        {"image": str(image), "question": "is there a red circle?"},  # --choices applies
        {"image": str(image), "question": "what color is the square?", "choices": "red|blue|green|purple|yellow|gray"},
        {"image": str(image), "question": "is there a red circle?", "choices": ["yes", "maybe"]},  # maybe: not an answer
        {"image": str(image), "question": "is there a red circle?", "choices": "|"},
    ]))
    result = batch(rows, "--choices", "yes,no")
    out = records(result.stdout)
    assert result.exit_code == 1 and len(out) == 4 and "choices" not in out[0]
    assert out[0]["answer"] in ("yes", "no") and out[0]["error"] is None
    assert out[1]["answer"] in ("red", "blue", "green", "purple", "yellow", "gray") and out[1]["error"] is None
    assert "'maybe'" in out[2]["error"] and out[3]["error"].startswith("choices must be")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"image": str(image), "question": "is there a red circle?", "choices": "no|yes"}) + "\n")
    [alone] = records(batch(one).stdout)  # the row's own choices, in another order, in a batch of its own
    assert (alone["answer"], alone["score"]) == (out[0]["answer"], out[0]["score"])


@pytest.fixture(scope="module")
def video_rows(tmp_path_factory):
    """A 2 s clip (bright and dark halves of each second), a scene image, the clip cut in half, and rows naming them."""
    from PIL import Image

    from vqa_cli.io.video import write_video

    root = tmp_path_factory.mktemp("video-batch")
    levels = [230 if i % 10 < 5 else 20 for i in range(20)]
    write_video(root / "clip.mp4", [Image.new("RGB", (64, 48), (v, v, v)) for v in levels], fps=10)
    data = (root / "clip.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    render(sample_scene(random.Random(1))).save(root / "scene.png")
    rows = [
        {"id": "v1", "image": "clip.mp4", "question": "is there a red circle?"},
        {"id": "i1", "image": "scene.png", "question": "what color is the circle?"},
        {"id": "v2", "image": "cut.mp4", "question": "is there a red circle?"},
        {"id": "v3", "image": "clip.mp4", "question": "what color is the circle?"},
    ]
    (root / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_a_video_row_gets_its_video_and_segments_and_a_bad_video_fails_alone(video_rows, tiny_bundle):
    result = batch(video_rows / "rows.jsonl", "-m", tiny_bundle, "--fps", 2)
    assert result.exit_code == 1, result.output  # one row failed
    assert "answered 3, failed 1" in result.stderr and "Traceback" not in result.stderr
    clip, image, cut, again = records(result.stdout)
    assert [r["id"] for r in (clip, image, cut, again)] == ["v1", "i1", "v2", "v3"]
    for rec in (clip, again):
        assert rec["error"] is None and isinstance(rec["answer"], str) and "frames" not in rec
        assert rec["video"] == {"duration": 2.0, "fps": 10.0, "width": 64, "height": 48, "sampled": 4}
        segments = rec["segments"]
        assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 2.0
        assert all(a["end"] == b["start"] and a["answer"] != b["answer"] for a, b in zip(segments, segments[1:]))
        assert rec["answer"] in {s["answer"] for s in segments}
    assert image["error"] is None and "video" not in image and "segments" not in image
    assert cut["answer"] is None and cut["error"].startswith("cannot read video") and "video" not in cut
    assert list(clip)[-1] == "error" and list(clip).index("video") < list(clip).index("segments")


def test_a_video_row_lists_its_frames_when_asked(video_rows, tiny_bundle):
    import torch

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.video import Sampling
    from vqa_cli.run.batch import BatchOptions, run
    from vqa_cli.run.timeline import overall
    from vqa_cli.backends.base import Answer

    engine = load_engine(str(tiny_bundle), "cpu", torch.float32)
    written = []
    summary = run(lambda: engine, BatchOptions(str(video_rows / "rows.jsonl"), video=Sampling(fps=2), frames=True), written.append)
    assert (summary.answered, summary.failed) == (3, 1)
    clip, image, cut, again = written
    for rec in (clip, again):
        assert [f["t"] for f in rec["frames"]] == [0.0, 0.5, 1.0, 1.5]
        assert all(isinstance(f["answer"], str) and 0.0 <= f["score"] <= 1.0 for f in rec["frames"])
        assert rec["answer"] == overall([Answer("", f["answer"], f["score"]) for f in rec["frames"]])[0]
        merged = [f["answer"] for n, f in enumerate(rec["frames"]) if n == 0 or f["answer"] != rec["frames"][n - 1]["answer"]]
        assert [s["answer"] for s in rec["segments"]] == merged
    assert "frames" not in image and "frames" not in cut and cut["error"].startswith("cannot read video")
    plain = batch(video_rows / "rows.jsonl", "-m", tiny_bundle, "--fps", 2, "--frames")
    assert records(plain.stdout)[0]["frames"] == clip["frames"]  # --frames on the command line says the same


def test_a_csv_has_the_video_columns_even_when_its_first_row_is_an_image(tiny_bundle, scene_png, tmp_path):
    clip = Path(__file__).resolve().parents[2] / "samples" / "clip.mp4"
    rows = tmp_path / "rows.csv"
    rows.write_text(f"image,question\n{scene_png},what?\n{clip},what?\n")
    out = tmp_path / "out.csv"
    result = batch(rows, "-m", tiny_bundle, "--format", "csv", "-o", out)
    assert result.exit_code == 0, result.output
    image, video = csv.DictReader(out.open())
    assert image["video"] == image["segments"] == ""
    assert json.loads(video["video"])["sampled"] == 8 and json.loads(video["segments"])[-1]["end"] == 8.0
