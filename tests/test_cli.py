"""`vqa` end to end through typer's CliRunner, plus one real subprocess of the installed command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vqa_cli.cli import app

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_ask_prints_one_answer_per_question(tiny_bundle, scene_png):
    result = run("ask", scene_png, "what color is the circle?", "is there a red square?", "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    vocabulary = json.loads((tiny_bundle / "config.json").read_text())["answers"]
    assert all(line in vocabulary for line in lines)
    assert result.stderr == ""


def test_ask_json_schema(tiny_bundle, scene_png):
    result = run("ask", "--json", "--top-k", "3", scene_png, "what color is the circle?", "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    assert doc["image"] == str(scene_png)
    assert doc["model"]["name"] == "tiny" and doc["model"]["kind"] == "cross-attention"
    assert doc["device"] == "cpu" and doc["dtype"] == "float32"
    (answer,) = doc["answers"]
    assert answer["question"] == "what color is the circle?"
    assert len(answer["top_k"]) == 3
    scores = [r["score"] for r in answer["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert answer["answer"] == answer["top_k"][0]["answer"] and answer["score"] == scores[0]


def test_top_k_is_capped_at_the_vocabulary(tiny_bundle, scene_png):
    result = run("ask", "--json", "--top-k", "100", scene_png, "what?", "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["answers"][0]["top_k"]
    assert len(top) == 6
    assert sum(r["score"] for r in top) == pytest.approx(1.0, abs=1e-4)


def test_ask_reads_the_image_from_stdin(tiny_bundle, scene_png):
    from_file = run("ask", "--json", scene_png, "is there a red square?", "-m", tiny_bundle)
    from_stdin = run("ask", "--json", "-", "is there a red square?", "-m", tiny_bundle, input=scene_png.read_bytes())
    assert from_stdin.exit_code == 0, from_stdin.output
    assert json.loads(from_stdin.stdout)["answers"] == json.loads(from_file.stdout)["answers"]


def test_model_from_env_var(tiny_bundle, scene_png, monkeypatch):
    monkeypatch.setenv("VQA_MODEL", str(tiny_bundle))
    result = run("ask", "--json", scene_png, "what?")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["name"] == "tiny"


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda img, tmp: ["ask", tmp / "missing.png", "what?"], "image not found"),
        (lambda img, tmp: ["ask", _write(tmp / "notes.png", b"not an image"), "what?"], "not an image"),
        (lambda img, tmp: ["ask", img, "   "], "empty question"),
        (lambda img, tmp: ["ask", img, "what?", "-m", "no-such-model"], "unknown model 'no-such-model'"),
        (lambda img, tmp: ["ask", img, "what?", "--device", "cuda"], "cuda"),
        (lambda img, tmp: ["eval", _write(tmp / "q.csv", f"image,question\n{img},what?\n".encode())], "no gold answer"),
    ],
    ids=["missing-file", "not-an-image", "empty-question", "unknown-model", "absent-device", "eval-unlabelled"],
)
def test_bad_input_gives_one_line_on_stderr_and_exit_1(make_args, message, scene_png, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run(*make_args(scene_png, tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("vqa: error:")
    assert "Traceback" not in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_usage_errors_exit_2(scene_png):
    assert run("ask", scene_png).exit_code == 2  # no question
    assert run("ask", scene_png, "what?", "--top-k", "0").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_models_lists_the_shipped_bundle():
    result = run("models", "--json")
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    shapes = entries["shapes"]
    assert shapes["answers"] == 26
    assert shapes["text_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert shapes["size_bytes"] > 0
    table = run("models")
    assert table.exit_code == 0 and "shapes" in table.stdout
    lines = table.stdout.splitlines()
    assert lines[0] == "models" and not any(line.endswith(" ") for line in lines)  # piped: no padding to cut


def registered_commands() -> list[str]:
    """Every command registered on the typer app, as click builds it, so a new command is covered here by itself."""
    import typer.main

    return sorted(typer.main.get_command(app).commands)


COMMANDS = registered_commands()


def test_the_commands_are_found_from_the_app():
    assert set(COMMANDS) >= {"ask", "batch", "models", "pull", "synth", "train", "eval", "serve", "domain"}  # the README's table


def test_help_lists_every_command_with_examples_exit_codes_and_version():
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout, command
    assert "Examples:" in result.stdout and 'vqa ask samples/scene_1.png "what shape is the red object?"' in result.stdout
    assert "Exit codes: 0 success" in result.stdout
    assert run("--version").stdout.startswith("vqa ")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    import typer.main

    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: vqa {command} "), result.stdout
    summary = typer.main.get_command(app).commands[command].help.split(".")[0].split()
    assert summary and " ".join(summary[:4]) in " ".join(result.stdout.split()), "the docstring is the help"
    assert "--help" in result.stdout and result.stderr == ""


def test_train_options_come_from_their_single_definition():
    from vqa_cli.train.options import cli_fields

    result = run("train", "--help")
    assert result.exit_code == 0, result.output
    for f in cli_fields():
        flag = (f.metadata["flag"] or "--" + f.name.replace("_", "-")).split("/")[0]
        assert flag in result.stdout, flag
        assert f.metadata["help"].split()[0] in result.stdout
    assert "[default: 128" in result.stdout  # --width: HeadConfig's default


@pytest.mark.parametrize("fusion", ["cross", "early", "late", "hybrid"])
def test_every_fusion_trains_saves_and_answers_through_the_cli(fusion, shapes_data, tiny_text_folder, tmp_path):
    from vqa_cli.store import bundle as bundles

    out = tmp_path / fusion
    trained = run("train", str(shapes_data / "questions.csv"), "--out", str(out), "--fusion", fusion, "--steps", "5",
                  "--text-encoder", str(tiny_text_folder), "--image-size", "32", "--width", "16", "--heads", "2",
                  "--images-per-batch", "4", "--scenes", str(shapes_data / "scenes.json"), "--eval-every", "5")
    assert trained.exit_code == 0, trained.output
    config = bundles.read_config(out)
    assert config["head"]["fusion"] == fusion and config["kind"] == {"cross": "cross-attention"}.get(fusion, f"{fusion}-fusion")
    image = str(next((shapes_data / "images").iterdir()))
    answered = run("ask", "-m", str(out), "--json", image, "how many circles are there?")
    assert answered.exit_code == 0, answered.output
    record = json.loads(answered.stdout)
    assert record["model"]["kind"] == config["kind"] and record["answers"][0]["answer"] in config["answers"]
    evaluated = run("eval", str(shapes_data / "questions.csv"), "-m", str(out), "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["rows"] == 24 * 6
    batched = run("batch", str(shapes_data / "questions.csv"), "-m", str(out))
    assert batched.exit_code == 0 and len(batched.stdout.splitlines()) == 24 * 6
    explained = run("ask", "-m", str(out), image, "how many circles are there?", "--explain", str(tmp_path / "why.png"))
    if fusion == "late":
        assert explained.exit_code == 1 and "cannot draw where it looked (--explain): late fusion has no attention" in explained.output
    else:
        assert explained.exit_code == 0 and (tmp_path / "why.png").exists()


def test_an_unknown_fusion_is_a_usage_error(shapes_data, tmp_path):
    result = run("train", str(shapes_data / "questions.csv"), "--out", str(tmp_path / "x"), "--fusion", "mixed")
    assert result.exit_code == 2 and "mixed" in result.output and "cross" in result.output


def _installed_vqa() -> str:
    return str(Path(sys.executable).parent / "vqa")


def test_installed_command_answers_the_readme_question():
    """The README's first example, as a user runs it: a real process with the builtin model."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [_installed_vqa(), "ask", "samples/scene_1.png", "what shape is the red object?"],
        cwd=root, capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "square\n"
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["--help"]] + [[command, "--help"] for command in COMMANDS], ids=lambda args: " ".join(args))
def test_help_does_not_import_torch(args):
    code = f"import sys; from vqa_cli.cli import app; app({args!r}, standalone_mode=False); " \
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_domain_fields_warnings_and_strict_domain(domain_bundle, tiny_bundle, scene_png, tmp_path):
    from tests.conftest import DATA

    photo = DATA / "photo.jpg"
    scene = run("ask", "--json", "-m", domain_bundle, scene_png, "is there a dog?")
    assert scene.exit_code == 0, scene.output
    doc = json.loads(scene.stdout)
    assert doc["image_in_domain"] is True and doc["answers"][0]["question_in_domain"] is False
    assert scene.stderr.startswith("vqa: warning: question 1 ('is there a dog?')") and "Shapes scenes" in scene.stderr

    plain = run("ask", "-m", domain_bundle, photo, "is there a dog?")
    assert plain.exit_code == 0 and plain.stdout.count("\n") == 1  # still answers
    lines = plain.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("vqa: warning: the image") and "Salesforce/blip-vqa-base" in lines[0]

    strict = run("ask", "--strict-domain", "-m", domain_bundle, photo, "is there a dog?")
    assert strict.exit_code == 1 and strict.stdout == "" and strict.stderr.count("\n") == 1

    no_stats = json.loads(run("ask", "--json", "-m", tiny_bundle, scene_png, "what?").stdout)
    assert no_stats["image_in_domain"] is None and no_stats["answers"][0]["question_in_domain"] is None

    rows = tmp_path / "rows.csv"
    rows.write_text(f"image,question\n{scene_png},is there a dog?\n{photo},what color is the circle?\n")
    records = [json.loads(line) for line in run("batch", rows, "-m", domain_bundle).stdout.splitlines()]
    assert [(r["image_in_domain"], r["question_in_domain"]) for r in records] == [(True, False), (False, True)]
    strict_batch = run("batch", rows, "-m", domain_bundle, "--strict-domain")
    assert strict_batch.exit_code == 1
    assert [json.loads(line)["error"] for line in strict_batch.stdout.splitlines()] == [
        "question outside the model's domain (--strict-domain)", "image outside the model's domain (--strict-domain)"]


def test_ask_with_choices_answers_among_them_with_probabilities_over_the_set(tmp_path):
    scene = "samples/scene_1.png"
    result = run("ask", "--json", scene, "what shape is the red object?", "is there a blue circle?", "--choices", "circle, square,triangle")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["answers"]
    assert answers[0]["answer"] == "square" and {r["answer"] for r in answers[0]["top_k"]} == {"circle", "square", "triangle"}
    assert all(abs(sum(r["score"] for r in a["top_k"]) - 1) < 1e-4 for a in answers)
    listed = tmp_path / "choices.txt"
    listed.write_text("triangle\nsquare\n\ncircle\n")
    again = run("ask", "--json", scene, "what shape is the red object?", "is there a blue circle?", "--choices-file", listed)
    assert json.loads(again.stdout)["answers"] == answers  # the order of the choices changes nothing
    plain = run("ask", scene, "is there a blue circle?", "--choices", "yes,no")
    assert plain.exit_code == 0 and plain.stdout.strip() in ("yes", "no")


def test_choices_the_model_cannot_give_or_malformed_ones_are_one_line():
    unknown = run("ask", "samples/scene_1.png", "what shape is the red object?", "--choices", "square,hexagon")
    assert unknown.exit_code == 1 and "'hexagon'" in unknown.stderr and unknown.stderr.count("\n") == 1
    for bad in (",", "a,,b"):
        malformed = run("ask", "samples/scene_1.png", "what?", "--choices", bad)
        assert malformed.exit_code == 2 and "--choices" in malformed.stderr


CLIP = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"


def test_a_video_gets_its_overall_answer_then_the_segments_where_each_answer_holds():
    result = run("ask", CLIP, "is there a small purple object?", "is the small gray circle on the left or right?")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # the purple object comes into view about 3 s in; the gray circle crosses from right to left
    assert lines[0] == "yes" and lines[1].startswith("  0–") and lines[1].endswith(" no") and lines[2].endswith("–8 yes")
    assert "left" in lines[3:] and any(line.endswith("right") for line in lines[4:]) and lines[-1].endswith("–8 left")


def test_video_json_has_the_video_the_frames_in_time_order_and_segments_that_tile_it(tiny_bundle):
    result = run("ask", "--json", CLIP, "what color is the circle?", "is there a red square?", "--fps", "2", "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["video"] == {"duration": 8.0, "fps": 10.0, "width": 256, "height": 256, "sampled": 16}
    for answer in doc["answers"]:
        times = [f["t"] for f in answer["frames"]]
        assert times == [k / 2 for k in range(16)]
        segments = answer["segments"]
        assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 8.0
        assert all(a["end"] == b["start"] and a["answer"] != b["answer"] for a, b in zip(segments, segments[1:]))
        for frame in answer["frames"]:  # every frame's answer is its segment's
            assert next(s for s in segments if s["start"] <= frame["t"] < s["end"])["answer"] == frame["answer"]


def test_start_end_and_max_frames_choose_the_frames(tiny_bundle):
    result = run("ask", "--json", CLIP, "what?", "--start", "2", "--end", "6", "--fps", "4", "--max-frames", "4", "-m", tiny_bundle)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)["answers"][0]
    assert [f["t"] for f in answer["frames"]] == [2.0, 3.0, 4.0, 5.0]
    assert answer["segments"][-1]["end"] == 6.0


@pytest.mark.parametrize("args, code, message", [
    (["--fps", "0"], 2, "--fps must be a positive number"),
    (["--max-frames", "0"], 2, "--max-frames must be at least 1"),
    (["--start", "5", "--end", "4"], 2, "--end (4 s) must come after --start (5 s)"),
    (["--start", "30"], 1, "--start 30 s is beyond the end of"),
    (["--explain", "out.png"], 2, "--explain draws on images"),
])
def test_bad_video_options_are_one_line_errors(tiny_bundle, tmp_path, args, code, message):
    result = run("ask", CLIP, "what?", "-m", tiny_bundle, *args)
    assert result.exit_code == code
    assert result.stdout == "" and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_truncated_video_is_a_one_line_error(tiny_bundle, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(CLIP.read_bytes()[: len(CLIP.read_bytes()) // 2])
    result = run("ask", broken, "what?", "-m", tiny_bundle)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("vqa: error: cannot read video") and len(result.stderr.splitlines()) == 1


def test_batch_rows_may_name_videos_and_frames_adds_the_per_frame_answers(tiny_bundle, scene_png, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [
        {"image": str(CLIP), "question": "what?"}, {"image": str(scene_png), "question": "what?"},
        {"image": str(tmp_path / "missing.mp4"), "question": "what?"},
    ]) + "\n")
    plain = run("batch", rows, "-m", tiny_bundle, "-q")
    framed = run("batch", rows, "-m", tiny_bundle, "-q", "--frames")
    assert plain.exit_code == framed.exit_code == 1  # the missing video's row failed alone
    video, image, missing = [json.loads(line) for line in plain.stdout.splitlines()]
    assert video["video"]["sampled"] == 8 and video["segments"][-1]["end"] == 8.0 and "frames" not in video
    assert "video" not in image and image["error"] is None and missing["error"].startswith("image not found")
    with_frames = json.loads(framed.stdout.splitlines()[0])
    assert [f["t"] for f in with_frames["frames"]] == [float(t) for t in range(8)]
    assert {k: v for k, v in with_frames.items() if k != "frames"} == video


def test_synth_videos_then_eval_reports_per_frame_accuracy_and_the_yes_iou(tmp_path):
    made = run("synth", tmp_path / "clips", "--videos", "2", "--questions-per-image", "6")
    assert made.exit_code == 0, made.output
    result = run("eval", "--json", tmp_path / "clips" / "videos.jsonl")
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)["video"]
    assert video["rows"] >= 10 and video["frames"] > video["rows"]
    assert video["frame_accuracy"] > 0.8  # the builtin model, on compressed frames of its own world
    assert 0 <= video["temporal_iou"] <= 1 and video["frames_out_of_domain"] < 0.5
