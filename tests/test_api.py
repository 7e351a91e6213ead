"""The Python API (vqa_cli.load / Engine.ask): cheap to import, and the same answers as `vqa ask --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vqa_cli
from vqa_cli.errors import ImageError, ModelError

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "samples/scene_1.png"
QUESTIONS = [
    "what shape is the red object?",
    "how many circles are there?",
    "what is the capital of france?",  # off-topic: its question_in_domain flag must agree too
]


def clean_env() -> dict:
    """The environment a test subprocess sees: no user settings, no network (as conftest.isolated)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VQA_") and k != "RAY_ADDRESS"}
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="module")
def cli_run():
    """`vqa ask --json --top-k 3`, started first so that it runs while the test process loads its own engine."""
    command = [sys.executable, "-m", "vqa_cli", "ask", "--json", "--top-k", "3", "-m", "shapes", IMAGE, *QUESTIONS]
    process = subprocess.Popen(command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def engine():
    with pytest.MonkeyPatch.context() as mp:
        for var in [k for k in os.environ if k.startswith("VQA_")]:
            mp.delenv(var)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.chdir(ROOT)
        return vqa_cli.load("shapes")


def answers_of(answers) -> list[tuple]:
    return [(a.question, a.answer, a.image_in_domain, a.question_in_domain) for a in answers]


def assert_same_answers(got, expected):
    """Same answers, flags and ranking; scores equal up to float noise between processes."""
    assert answers_of(got) == answers_of(expected)
    for g, e in zip(got, expected):
        assert g.score == pytest.approx(e.score, rel=1e-4, abs=1e-6)
        assert [r["answer"] for r in g.top_k] == [r["answer"] for r in e.top_k]
        assert [r["score"] for r in g.top_k] == pytest.approx([r["score"] for r in e.top_k], rel=1e-4, abs=1e-6)


def test_importing_the_package_loads_no_torch():
    code = "import sys, vqa_cli; assert callable(vqa_cli.load); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "importing vqa_cli pulled in torch"


def test_ask_gives_the_answers_of_vqa_ask_json(cli_run, engine, monkeypatch):
    monkeypatch.chdir(ROOT)  # the same relative path the command line got
    answers = engine.ask(IMAGE, QUESTIONS, top_k=3)
    stdout, stderr = cli_run.communicate(timeout=120)
    assert cli_run.returncode == 0, stderr
    doc = json.loads(stdout)
    assert len(answers) == len(doc["answers"]) == len(QUESTIONS)
    assert [a.question for a in answers] == QUESTIONS  # one answer per question, in order
    for got, want in zip(answers, doc["answers"]):
        assert got.answer == want["answer"]
        assert got.score == pytest.approx(want["score"], rel=1e-4, abs=1e-6)
        assert len(got.top_k) == 3
        assert [r["answer"] for r in got.top_k] == [r["answer"] for r in want["top_k"]]
        assert [r["score"] for r in got.top_k] == pytest.approx([r["score"] for r in want["top_k"]], rel=1e-4, abs=1e-6)
        assert got.question_in_domain == want["question_in_domain"]
        assert got.image_in_domain == doc["image_in_domain"]
    assert answers[0].answer == "square"  # the README's example answer
    assert engine.model_info["name"] == doc["model"]["name"] == "shapes"


def test_a_single_question_string_gives_one_answer(engine):
    (answer,) = engine.ask(str(ROOT / IMAGE), QUESTIONS[0])
    assert answer.question == QUESTIONS[0] and answer.answer == "square"
    assert len(answer.top_k) == 1  # top_k defaults to 1


def test_path_bytes_and_pil_image_give_the_same_answers(engine):
    from PIL import Image

    path = ROOT / IMAGE
    questions = QUESTIONS[:2]
    by_path = engine.ask(str(path), questions, top_k=3)
    with Image.open(path) as image:
        image.load()
        pil = image.copy()
    for source in (path.read_bytes(), pil):
        assert_same_answers(engine.ask(source, questions, top_k=3), by_path)


def test_bad_images_raise_image_error(engine, tmp_path):
    with pytest.raises(ImageError, match="not an image"):
        engine.ask(b"hello, this is not an image", QUESTIONS[0])
    with pytest.raises(ImageError, match="not found"):
        engine.ask(str(tmp_path / "missing.png"), QUESTIONS[0])
    with pytest.raises(ImageError, match="cannot read an image from a int"):
        engine.ask(42, QUESTIONS[0])


def test_unknown_model_raises_model_error_naming_the_known_ones(monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ModelError) as error:
        vqa_cli.load("no-such-model-here")
    message = str(error.value)
    assert "no-such-model-here" in message and "shapes" in message
    assert "\n" not in message


def readme_python_api_example() -> str:
    """The first ```python block under the README heading that contains 'Python API' (before the next heading)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("#") and "Python API" in line]
    if not starts:
        pytest.fail("README.md has no section whose heading contains 'Python API'; add one with a ```python example")
    heading = lines[starts[0]]
    level = len(heading) - len(heading.lstrip("#"))
    block, fence = None, None  # fence: the language of the code block we are in, if any
    for line in lines[starts[0] + 1:]:
        if fence is None and line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
            break  # the next section; a '# comment' inside a code block is no heading
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip().split(" ")[0] or "text"
                if fence == "python":
                    block = []
            elif fence == "python":
                return "\n".join(block) + "\n"
            else:
                fence = None
        elif fence == "python":
            block.append(line)
    pytest.fail(f"README.md's section {heading.strip()!r} has no complete ```python code block")


def test_readme_python_api_example_runs_as_written():
    code = readme_python_api_example()
    assert "import vqa_cli" in code and "vqa_cli.load(" in code, "the README example should show import vqa_cli and vqa_cli.load("
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "what shape is the red object? -> square" in result.stdout
