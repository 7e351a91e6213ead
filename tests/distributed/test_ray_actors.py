"""`vqa batch --engine ray` on real, local Ray: the same records as the local engine, in order,
whatever happens to the driver or to an actor.

One Ray cluster (`ray start --head`, with CPUs to spare) serves the session; one test starts
vqa's own local instance instead. Every run is a real `vqa` process, as a user runs it.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

VQA = str(Path(sys.executable).parent / "vqa")
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The user's settings that would send a run elsewhere. Module-scoped fixtures start before the
# autouse `isolated` fixture clears them, so the subprocesses here drop them themselves.
USER_SETTINGS = ("VQA_SERVER", "VQA_API_KEY", "VQA_MODEL", "VQA_DEVICE", "RAY_ADDRESS")


def _clean_environ() -> dict:
    return {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A local Ray cluster for this module: the `ray start` process (every Ray process of the
    cluster descends from it) and the environment that reaches it (token auth on).

    `ray start --block` stays in the foreground and takes the cluster down when it is
    stopped, so only this cluster is stopped, never another Ray on the machine.
    """
    env = {**_clean_environ(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0",
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path_factory.getbasetemp() / "hf-home")}
    port = _free_port()
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=4", "--include-dashboard=false",
                                 "--node-ip-address=127.0.0.1"], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while "Ray runtime started" not in log.read_text():
        assert head.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.2)
    yield head, {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    head.send_signal(signal.SIGTERM)
    head.wait(timeout=120)


@pytest.fixture(scope="module")
def ray_env(ray_head):
    return ray_head[1]


@pytest.fixture(scope="module")
def rows_csv(tmp_path_factory):
    """50 windows of rows over 256 distinct images, with a pass-through column, a video, a file:// URI and two bad rows."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("ray-rows")
    (folder / "img").mkdir()
    for n in range(256):
        Image.new("RGB", (48, 48), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)).save(folder / "img" / f"{n}.png")
    questions = ["what color is the circle?", "how many objects are there?", "is there a red square?"]
    with open(folder / "rows.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "question", "tag"])
        for n in range(256 * 50):
            out.writerow([f"img/{n % 256}.png", questions[n % 3], f"t{n}"])
        out.writerow([str(Path(__file__).resolve().parents[2] / "samples" / "clip.mp4"), "is there a red square?", "video"])
        out.writerow([(folder / "img" / "7.png").as_uri(), "what color is the circle?", "uri"])  # opened through fsspec
        out.writerow(["img/missing.png", "what color is the circle?", "bad-image"])
        out.writerow(["img/1.png", "", "bad-question"])
    return folder / "rows.csv"


def vqa(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = _clean_environ() if env is None else env
    return subprocess.run([VQA, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def local_records(rows_csv, tiny_bundle, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    result = vqa("batch", str(rows_csv), "-m", str(tiny_bundle), "--top-k", "3", "-o", str(out))
    assert result.returncode == 1 and "failed 2" in result.stderr  # the two bad rows
    return out.read_bytes()


def test_one_local_worker_writes_exactly_what_the_local_engine_writes(rows_csv, tiny_bundle, local_records, tmp_path):
    """No address: vqa starts a local Ray instance sized to this machine, and stdout is the local run's, byte for byte."""
    result = vqa("batch", str(rows_csv), "-m", str(tiny_bundle), "--top-k", "3", "--engine", "ray", "--workers", "1")
    assert result.returncode == 1, result.stderr  # bad rows fail the run, as locally
    assert result.stdout.encode() == local_records
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-3]["tag"] == "uri" and records[-3]["error"] is None
    assert records[-4]["tag"] == "video" and records[-4]["video"]["sampled"] == 8 and records[-4]["segments"]
    assert records[-2]["error"].startswith("image not found") and records[-1]["error"] == "empty question"
    assert records[0]["tag"] == "t0" and [r["id"] for r in records] == list(range(1, len(records) + 1))
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"vqa: answered {len(records) - 2}, failed 2 in "), result.stderr
    assert all(line.startswith("vqa: ") for line in result.stderr.strip().splitlines()), result.stderr


def test_two_workers_on_a_cluster_write_the_same_records_in_order(rows_csv, tiny_bundle, local_records, ray_env, tmp_path):
    out = tmp_path / "out.jsonl"
    result = vqa("batch", str(rows_csv), "-m", str(tiny_bundle), "--top-k", "3", "--engine", "ray", "--workers", "2",
                 "-o", str(out), env=ray_env)
    assert result.returncode == 1, result.stderr
    assert out.read_bytes() == local_records


def _start(args, env, out: Path) -> subprocess.Popen:
    """A vqa run in the background, once it has written its first 256 records; stderr goes to _log(out)."""
    with open(_log(out), "w") as log:
        process = subprocess.Popen([VQA, *args], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.time() + 240
    while not (out.exists() and out.read_bytes().count(b"\n") >= 256):
        assert process.poll() is None, _log(out).read_text()
        assert time.time() < deadline, "no record within 240 s"
        time.sleep(0.05)
    return process


def _log(out: Path) -> Path:
    return out.with_name(out.name + ".stderr")


def _records(out: Path) -> int:
    return out.read_bytes().count(b"\n") if out.exists() else 0


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (state, ppid, ...), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in "ZX"


def _cpu_ticks(pid: int) -> int:
    """CPU time used so far, in clock ticks (utime + stime); -1 once the process is gone."""
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else -1


def _descendants(root: int) -> set[int]:
    """Every live process below `root`, found through the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and fields[0] not in "ZX":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _answerers(head: subprocess.Popen) -> set[int]:
    """The Answerer actors of the test's own cluster: processes below the `ray start` it started."""
    pids = set()
    for pid in _descendants(head.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::Answerer"):
                    pids.add(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def test_resume_after_the_driver_is_killed_finishes_the_same_file(rows_csv, tiny_bundle, local_records, ray_env, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["batch", str(rows_csv), "-m", str(tiny_bundle), "--top-k", "3", "--engine", "ray", "--workers", "1", "-o", str(out)]
    process = _start(args, ray_env, out)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    written = out.read_bytes().count(b"\n")
    assert 0 < written < local_records.count(b"\n"), "the run was not killed mid-way"
    resumed = vqa(*args, "--resume", env=ray_env)
    assert resumed.returncode == 1, resumed.stderr
    assert "already done" in resumed.stderr
    assert out.read_bytes() == local_records  # nothing lost, nothing doubled, still in order


def test_an_actor_killed_mid_run_loses_and_doubles_no_row(rows_csv, tiny_bundle, local_records, ray_head, tmp_path):
    """SIGKILL the one Answerer actor while it is answering: Ray restarts it and the run still
    writes every record exactly once, in order. Only a PID found below the test's own cluster is killed."""
    head, env = ray_head
    out = tmp_path / "out.jsonl"
    total = local_records.count(b"\n")
    args = ["batch", str(rows_csv), "-m", str(tiny_bundle), "--top-k", "3", "--engine", "ray", "--workers", "1", "-o", str(out)]
    process = _start(args, env, out)
    try:
        actors = _answerers(head)
        assert len(actors) == 1, f"want the one Answerer of --workers 1, found {actors}"
        (actor,) = actors
        # It is answering: it uses CPU while the run is still writing records.
        ticks, written = _cpu_ticks(actor), _records(out)
        deadline = time.time() + 30
        while _cpu_ticks(actor) - ticks < 10 or _records(out) == written:  # 10 ticks: 0.1 s of CPU
            assert _alive(actor), f"actor {actor} died before the test killed it"
            assert process.poll() is None and time.time() < deadline, "the actor did not answer before the run ended"
            time.sleep(0.05)
        assert _alive(actor) and process.poll() is None
        os.kill(actor, signal.SIGKILL)
        at_kill = _records(out)
        assert process.poll() is None and 0 < at_kill < total, "the kill did not land mid-run"
        deadline = time.time() + 30
        while _alive(actor):
            assert time.time() < deadline, f"actor {actor} survived SIGKILL"
            time.sleep(0.05)
        restarted, deadline = set(), time.time() + 300
        while process.poll() is None:  # Ray replaces the actor and the run goes on
            restarted |= _answerers(head) - {actor}
            assert time.time() < deadline, "the run did not finish within 300 s of the kill"
            time.sleep(0.1)
    finally:  # a failed check leaves no run behind: stop the process this test started, by its Popen
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    stderr = _log(out).read_text()
    assert process.returncode == 1, stderr  # the two bad rows, as locally
    assert restarted, "no new Answerer took over after the kill"
    assert _records(out) == total > at_kill
    assert out.read_bytes() == local_records  # the killed window redone once: nothing lost, nothing doubled, in order


def test_a_pretrained_model_reading_rows_from_stdin_gives_the_local_records(rows_csv, tiny_vilt, ray_env, tmp_path):
    """-m takes any model, ViLT included; `-` reads the rows from stdin and --image-root places them."""
    rows = "image,question\n" + "".join(f"{n % 256}.png,is there a red square?\n" for n in range(300))
    args = ["batch", "-", "--input-format", "csv", "-m", str(tiny_vilt), "--top-k", "2", "--image-root", str(rows_csv.parent / "img")]
    local = subprocess.run([VQA, *args], input=rows, capture_output=True, text=True, timeout=300)
    on_ray = subprocess.run([VQA, *args, "--engine", "ray"], input=rows, env=ray_env, capture_output=True, text=True, timeout=300)
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr
    assert on_ray.stdout == local.stdout and len(on_ray.stdout.splitlines()) == 300


def test_ray_options_are_usage_errors_where_they_do_not_apply(rows_csv, tiny_bundle):
    shard = vqa("batch", str(rows_csv), "--engine", "ray", "--shard", "0/2")
    assert shard.returncode == 2 and "--shard does not go with --engine ray" in shard.stderr
    workers = vqa("batch", str(rows_csv), "--workers", "2")
    assert workers.returncode == 2 and "--engine ray" in workers.stderr


def test_without_ray_the_engine_says_how_to_install_it(rows_csv, tiny_bundle, monkeypatch):
    from typer.testing import CliRunner

    from vqa_cli.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as when it is not installed
    result = CliRunner().invoke(app, ["batch", str(rows_csv), "-m", str(tiny_bundle), "--engine", "ray"])
    assert result.exit_code == 1
    assert result.output.strip() == "vqa: error: --engine ray needs Ray: pip install 'vqa-cli[ray]'"


def test_image_uris_open_through_fsspec(tmp_path):
    import fsspec
    from PIL import Image

    from vqa_cli.io.media import image_path, load_media

    Image.new("RGB", (8, 6), (255, 0, 0)).save(tmp_path / "red.png")
    with fsspec.open("memory://bucket/red.png", "wb") as f:
        f.write((tmp_path / "red.png").read_bytes())
    assert load_media("memory://bucket/red.png").size == (8, 6)
    assert load_media((tmp_path / "red.png").as_uri()).getpixel((0, 0)) == (255, 0, 0)
    assert image_path("s3://bucket/key.png", tmp_path) == "s3://bucket/key.png"  # never joined to a root
    assert image_path("a/b.png", "s3://bucket/images/") == "s3://bucket/images/a/b.png"  # a URI root joins with /
    with pytest.raises(Exception, match="image not found: memory://bucket/none.png"):
        load_media("memory://bucket/none.png")


def test_a_batch_answers_rows_whose_images_are_memory_uris(tiny_bundle, tmp_path):
    """fsspec's memory:// lives in one process, so this runs the batch in this one."""
    import fsspec
    from PIL import Image
    from typer.testing import CliRunner

    from vqa_cli.cli import app

    Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "blue.png")
    with fsspec.open("memory://rows/blue.png", "wb") as f:
        f.write((tmp_path / "blue.png").read_bytes())
    (tmp_path / "rows.csv").write_text("image,question\nblue.png,what color is it?\nmemory://rows/none.png,what color is it?\n")
    result = CliRunner().invoke(app, ["batch", str(tmp_path / "rows.csv"), "-m", str(tiny_bundle), "--image-root", "memory://rows"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and records[0]["error"] is None and records[0]["answer"]
    assert records[1]["error"] == "image not found: memory://rows/none.png"


def test_a_run_that_stops_making_progress_fails_with_a_message_instead_of_hanging():
    """Windows go to actors that never answer (a cluster without the CPUs they wait for): one line, no hang."""
    import ray
    from ray.exceptions import GetTimeoutError

    from vqa_cli.distributed.ray_actors import answered_windows
    from vqa_cli.errors import VQAError

    class Stuck:
        class answer:
            @staticmethod
            def remote(window):
                return window

    class NoProgress:
        @staticmethod
        def get(ref, timeout=None):
            if ref == "first window":
                return "its records"
            raise GetTimeoutError("timed out")

    records = answered_windows(NoProgress, [Stuck()], iter(["first window", "second window"]), timeout=0.3)
    assert next(records) == "its records"
    with pytest.raises(VQAError, match=r"Ray made no progress for 0.3 s"):
        next(records)
    assert ray  # the real exception class was used


def test_the_driver_reads_only_two_windows_per_actor_ahead():
    from vqa_cli.distributed.ray_actors import answered_windows

    read = []

    def windows():
        for k in range(100):
            read.append(k)
            yield f"w{k}"

    class Echo:
        def __init__(self):
            self.answer = self

        def remote(self, window):
            return window

    class Immediate:
        @staticmethod
        def get(ref, timeout=None):
            return ref.upper()

    out = answered_windows(Immediate, [Echo(), Echo(), Echo()], windows(), timeout=1)
    assert [next(out) for _ in range(5)] == ["W0", "W1", "W2", "W3", "W4"]
    assert len(read) == 6 + 5  # two windows per actor in flight, one more read for each answered
    assert list(out) == [f"W{k}" for k in range(5, 100)]


def test_a_vision_language_model_on_the_cluster_writes_the_local_records(ray_env, tmp_path):
    """SmolVLM's architecture (tiny, random), its generation options and a bad row, through two actors."""
    from PIL import Image

    from tests.backends.tiny_vlm import build_idefics3

    folder = build_idefics3(tmp_path / "vlm")
    for n in range(4):
        Image.new("RGB", (40, 40), (60 * n, 200 - 40 * n, 90)).save(tmp_path / f"{n}.png")
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "question"])
        for n in range(12):
            out.writerow([f"{n % 4}.png" if n != 5 else "missing.png", ["what color is it?", "is there a circle?"][n % 2]])
    args = ["batch", str(rows), "-m", str(folder), "--max-tokens", "3", "--top-k", "2"]
    local = vqa(*args)
    clustered = vqa(*args, "--engine", "ray", "--workers", "2", env=ray_env)
    assert local.returncode == clustered.returncode == 1, clustered.stderr
    assert clustered.stdout == local.stdout and local.stdout.count("\n") == 12


def test_one_two_and_three_workers_write_the_same_bytes_as_a_local_run(rows_csv, ray_env, tmp_path):
    """Every window brings questions no earlier window had, so each worker's question cache meets
    them in other company than a local run's: the records must not depend on it."""
    import itertools

    words = [f"is there a {size} {color} {shape}?" for size, color, shape in
             itertools.product(("small", "large"), ("red", "blue", "green", "gray", "purple"), ("circle", "square", "triangle"))]
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "question"])
        for n in range(256 * 6):
            out.writerow([str(rows_csv.parent / "img" / f"{n % 200}.png"), words[((n // 256) * 5 + n % 5 + n % 7) % len(words)]])
            out.writerow([str(rows_csv.parent / "img" / f"{n % 200}.png"), f"how many {words[n % 30].split()[-1][:-1]}s are there?"])
    # The builtin model: its MiniLM shows batch shapes in the last bits. One torch thread, as each worker has.
    local = vqa("batch", str(rows), "-m", "shapes", "--top-k", "2", env={**_clean_environ(), "OMP_NUM_THREADS": "1"})
    assert local.returncode == 0, local.stderr
    for workers in ("1", "2", "3"):
        clustered = vqa("batch", str(rows), "-m", "shapes", "--top-k", "2", "--engine", "ray", "--workers", workers, env=ray_env)
        assert clustered.returncode == 0, clustered.stderr
        assert clustered.stdout == local.stdout, f"{workers} workers"


def test_the_input_itself_may_be_a_uri_on_both_engines(rows_csv, tiny_bundle, ray_env, tmp_path):
    """file:// here; s3:// and gs:// go through the same fsspec call. Relative images resolve against the input's URI."""
    rows = tmp_path / "rows.csv"
    rows.write_text("image,question\n" + "".join(f"img/{n}.png,what color is it?\n" for n in range(20)))
    (tmp_path / "img").symlink_to(rows_csv.parent / "img")
    local = vqa("batch", str(rows), "-m", str(tiny_bundle))
    for engine in (["--engine", "local"], ["--engine", "ray", "--workers", "1"]):
        remote = vqa("batch", rows.as_uri(), "-m", str(tiny_bundle), *engine, env=ray_env)
        assert remote.returncode == 0, remote.stderr
        assert remote.stdout == local.stdout and remote.stdout.count("\n") == 20
    missing = vqa("batch", (tmp_path / "none.csv").as_uri(), "-m", str(tiny_bundle))
    assert missing.returncode == 1 and "input file not found" in missing.stderr and missing.stderr.count("\n") == 1
