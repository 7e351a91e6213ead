"""The `vqa` command line: parse, call, render. Heavy imports happen inside commands."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .backends.base import Generation, configure
from .errors import EXIT_ERROR, InputError, UsageError, VQAError

EPILOG = """\
Examples:

  vqa ask samples/scene_1.png "what shape is the red object?"

  vqa ask --json samples/scene_1.png "how many circles are there?" | jq .answers[0].answer

  cat photo.jpg | vqa ask - "is there a cat?" -m Salesforce/blip-vqa-base

  vqa batch samples/questions.csv | jq -r .answer

Exit codes: 0 success, 1 an error (in `vqa batch`, at least one failed row), 2 a usage error, 130 interrupted.
"""

app = typer.Typer(
    name="vqa",
    help="Answer questions about images from the shell.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@contextmanager
def user_errors():
    """Turn VQAError into one line on stderr and its exit code; Ctrl-C into exit 130."""
    try:
        yield
    except VQAError as e:
        print(f"vqa: error: {e}", file=sys.stderr)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        print("vqa: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"vqa {version('vqa-cli')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never touch the network; use only the Hugging Face cache. [env: HF_HUB_OFFLINE=1]")
    ] = False,
) -> None:
    """Answer questions about images from the shell.

    Exit codes: 0 success, 1 an error (or, in `vqa batch`, at least one failed row),
    2 a usage error, 130 interrupted.
    """
    if offline:
        import os

        os.environ["HF_HUB_OFFLINE"] = "1"  # read by huggingface_hub when it is first imported


ModelOption = Annotated[
    str,
    typer.Option("-m", "--model", envvar="VQA_MODEL", help="Bundle name or folder, or a pretrained VQA model id/folder."),
]
DeviceOption = Annotated[
    Optional[str], typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto [env: VQA_DEVICE; default: auto]")
]
DtypeOption = Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16 or float16.")]
InstructionOption = Annotated[
    Optional[str],
    typer.Option("--instruction", help="Generative models: the text put before each question. Default: "
                 "'Answer the question using a single word or phrase.'; '' sends the question alone."),
]
MaxTokensOption = Annotated[
    Optional[int], typer.Option("--max-tokens", min=1, help="Generative models: new tokens at most per answer. Default: 32 (BLIP: 12).")
]
TemperatureOption = Annotated[float, typer.Option("--temperature", min=0.0, help="Generative models: sample at this temperature (0: greedy).")]
SeedOption = Annotated[Optional[int], typer.Option("--seed", help="Generative models: with --temperature, the same samples on every run.")]
ChoicesOption = Annotated[
    Optional[str], typer.Option("--choices", help="Answer among these, comma-separated (\"yes,no\"); scores are probabilities over the set.")
]
ChoicesFileOption = Annotated[Optional[Path], typer.Option("--choices-file", help="Answer among these: one choice per line.")]
FpsOption = Annotated[float, typer.Option("--fps", help="Videos: answer this many frames per second.")]
MaxFramesOption = Annotated[int, typer.Option("--max-frames", help="Videos: at most this many frames, spread evenly over a longer video.")]
StartOption = Annotated[float, typer.Option("--start", help="Videos: begin at this second.")]
EndOption = Annotated[Optional[float], typer.Option("--end", help="Videos: stop at this second (default: the end).")]
ServerOption = Annotated[
    Optional[str],
    typer.Option("--server", envvar="VQA_SERVER", help="Answer through a `vqa serve` server at this URL (its models, its device)."),
]


@app.command()
def ask(
    image: Annotated[str, typer.Argument(help="Image file, or - to read the image from stdin.")],
    questions: Annotated[list[str], typer.Argument(help="One or more questions about the image.")],
    model: ModelOption = "shapes",
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many ranked answers to include.")] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    explain: Annotated[
        Optional[Path],
        typer.Option("--explain", help="Write the image with where the model looked as OUT.png (OUT-1.png, ... for several questions)."),
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    server: ServerOption = None,
    strict_domain: Annotated[
        bool, typer.Option("--strict-domain", help="Exit 1 instead of answering when the image or a question is outside the model's domain.")
    ] = False,
    instruction: InstructionOption = None,
    max_tokens: MaxTokensOption = None,
    temperature: TemperatureOption = 0.0,
    seed: SeedOption = None,
    choices: ChoicesOption = None,
    choices_file: ChoicesFileOption = None,
    fps: FpsOption = 1.0,
    max_frames: MaxFramesOption = 64,
    start: StartOption = 0.0,
    end: EndOption = None,
) -> None:
    """Answer QUESTIONS about IMAGE: one answer per line, in question order.

    The image is encoded once, whatever the number of questions. An image or question unlike
    what the model was trained on gets a warning on stderr (an error with --strict-domain).
    A video (any file whose bytes are one, pip install 'vqa-cli[video]') is answered frame by
    frame at --fps: each answer is followed by the segments where it holds.
    """
    with user_errors():
        from .backends.base import check_question
        from .io import output
        from .io.explain import write_explanations
        from .io.media import load_media
        from .io.video import Video
        from .run.stream import answer_image

        texts = [check_question(q) for q in questions]
        among = _choices(choices, choices_file)
        picture = load_media(image, video=_sampling(fps, max_frames, start, end))
        if explain is not None and isinstance(picture, Video):
            raise UsageError("--explain draws on images; IMAGE is a video")
        engine = _engine(model, device, dtype, server, Generation(instruction, max_tokens, temperature, seed))
        answers = answer_image(engine, picture, texts, top_k=top_k, explain=explain is not None, choices=among)
        warnings = output.domain_warnings("-" if image == "-" else image, engine, answers)
        if strict_domain and warnings:
            raise InputError(f"{warnings[0]} (--strict-domain)")
        for line in warnings:
            print(f"vqa: warning: {line}", file=sys.stderr)
        if explain is not None:
            write_explanations(picture, answers, explain, engine.grid_offset)
        if json_output:
            output.print_json(output.ask_document(image, engine, answers))
        else:
            output.print_answers(answers, top_k)


def _choices(choices: str | None, choices_file: Path | None) -> tuple[str, ...] | None:
    """--choices a,b,c or --choices-file (one per line) as a tuple; None when neither is given."""
    from .backends.base import parse_choices

    if choices is not None and choices_file is not None:
        raise UsageError("give --choices or --choices-file, not both")
    if choices_file is not None:
        try:
            items = [line for line in choices_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read --choices-file {choices_file}: {getattr(e, 'strerror', None) or e}") from None
    elif choices is not None:
        items = choices.split(",")
    else:
        return None
    try:
        return parse_choices(items)
    except InputError as e:
        raise UsageError(f"--choices: {e}") from None


def _sampling(fps: float, max_frames: int, start: float, end: float | None):
    from .io.video import Sampling

    return Sampling(fps, max_frames, start, end)


def _engine(model: str, device: str | None, dtype: str, server: str | None = None, generation: Generation = Generation()):
    """The engine for -m MODEL: loaded here, or a client of the server at `server` (which imports no torch)."""
    if server:
        import os

        from .serve.client import RemoteEngine

        return configure(RemoteEngine(server, model, os.environ.get("VQA_API_KEY")), generation)
    from .backends.registry import load_engine

    return configure(load_engine(model, device, dtype), generation)


class OutputFormat(str, Enum):
    jsonl = "jsonl"
    json = "json"
    csv = "csv"


class BatchEngine(str, Enum):
    local = "local"
    ray = "ray"


class Sampling(str, Enum):
    balanced = "balanced"
    uniform = "uniform"


class InputFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


@app.command()
def batch(
    input: Annotated[str, typer.Argument(help="CSV or JSONL of image,question[,id,...] rows, or - for stdin.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.jsonl,
    input_format: Annotated[Optional[InputFormat], typer.Option("--input-format", help="Default: from the extension.")] = None,
    image_root: Annotated[Optional[str], typer.Option("--image-root", help="Resolve relative image paths here, a folder or a URI such as s3://bucket/images (default: the input's folder).")] = None,
    model: ModelOption = "shapes",
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="Add a top_k list of N answers to each record.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Questions fused per forward pass.")] = 64,
    resume: Annotated[bool, typer.Option("--resume", help="With -o FILE.jsonl: skip ids already there, append the rest.")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", help="K/N: answer only rows whose index % N == K.")] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first bad row (exit 1).")] = False,
    strict_domain: Annotated[bool, typer.Option("--strict-domain", help="Rows whose image or question is outside the model's domain become error records.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary on stderr.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    server: ServerOption = None,
    engine: Annotated[BatchEngine, typer.Option("--engine", help="local: this process. ray: a pool of Ray actors (pip install 'vqa-cli[ray]').")] = BatchEngine.local,
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", envvar="RAY_ADDRESS", help="With --engine ray: join this cluster ('auto': the running one). Default: a local instance.")
    ] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="With --engine ray: actors. Default: as many as leave a CPU free.")] = None,
    cpus_per_worker: Annotated[float, typer.Option("--cpus-per-worker", min=0.5, help="With --engine ray: CPUs (and torch threads) per actor.")] = 1.0,
    gpus_per_worker: Annotated[float, typer.Option("--gpus-per-worker", min=0, help="With --engine ray: GPUs per actor.")] = 0.0,
    stall_timeout: Annotated[float, typer.Option("--stall-timeout", min=1, help="With --engine ray: fail after this many seconds without progress.")] = 600.0,
    instruction: InstructionOption = None,
    max_tokens: MaxTokensOption = None,
    temperature: TemperatureOption = 0.0,
    seed: SeedOption = None,
    choices: ChoicesOption = None,
    choices_file: ChoicesFileOption = None,
    fps: FpsOption = 1.0,
    max_frames: MaxFramesOption = 64,
    start: StartOption = 0.0,
    end: EndOption = None,
    frames: Annotated[bool, typer.Option("--frames", help="Videos: add each row's per-frame answers to its record.")] = False,
) -> None:
    """Answer every row of INPUT (images or videos); one record per row, in input order.

    Exit code 0 when every row was answered, 1 when any row failed (its record has "error").
    With --engine ray a pool of Ray actors answers, locally or on a cluster: same records, same order.
    """
    ray_options = dict(address=ray_address, workers=workers, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker, stall_timeout=stall_timeout)
    with user_errors():
        from .io.progress import progress_bar
        from .run.batch import BatchOptions, parse_shard, resumed_ids, write_batch

        generation = Generation(instruction, max_tokens, temperature, seed)
        answer_rows = _batch_runner(engine, model, device, dtype, server, shard, ray_options, generation)
        opts = BatchOptions(
            input=input, input_format=input_format.value if input_format else None, image_root=str(image_root) if image_root else None,
            top_k=top_k, batch_size=batch_size, shard=parse_shard(shard) if shard else (0, 1), fail_fast=fail_fast,
            skip_ids=resumed_ids(output, fmt.value, resume), strict_domain=strict_domain, unique_ids=resume,
            choices=_choices(choices, choices_file), video=_sampling(fps, max_frames, start, end), frames=frames)
        with progress_bar() as progress:
            summary = write_batch(answer_rows, opts, output, fmt.value, progress)
        if not quiet:
            print(summary.line(len(opts.skip_ids)), file=sys.stderr)
        if summary.failed:
            raise typer.Exit(EXIT_ERROR)


def _batch_runner(engine: BatchEngine, model: str, device, dtype: str, server, shard, ray_options: dict, generation: Generation):
    """What answers a batch, (opts, write, advance) -> Summary: this process's stream, or a Ray actor pool."""
    if engine == BatchEngine.ray:
        if shard or server:
            raise UsageError(f"{'--shard' if shard else '--server'} does not go with --engine ray: Ray shares the rows out itself")
        from .distributed.ray_actors import RayOptions, run as run_ray

        ray_opts = RayOptions(**ray_options, generation=generation)
        return lambda opts, write, advance: run_ray(model, device, dtype, opts, ray_opts, write, advance)
    if ray_options["workers"] or ray_options["gpus_per_worker"]:
        raise UsageError("--workers and --gpus-per-worker need --engine ray")
    from .run.batch import run as run_batch

    return lambda opts, write, advance: run_batch(lambda: _engine(model, device, dtype, server, generation), opts, write, advance)


@app.command()
def find(
    question: Annotated[str, typer.Argument(help="The question to ask of every image, e.g. \"is there a red circle?\".")],
    images: Annotated[list[str], typer.Argument(help="Image files, folders (their images, recursively) or - for a list of paths on stdin.")],
    answer: Annotated[str, typer.Option("--answer", help="Rank by the probability of this answer.")] = "yes",
    choices: ChoicesOption = None,
    choices_file: ChoicesFileOption = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Print the best N images.")] = 10,
    threshold: Annotated[Optional[float], typer.Option("--threshold", min=0.0, max=1.0, help="Print every image scoring at least P instead, as found.")] = None,
    jsonl: Annotated[bool, typer.Option("--json", help="JSONL: one {\"image\", \"score\", \"error\"} record per line.")] = False,
    model: ModelOption = "shapes",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Questions fused per forward pass.")] = 64,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    server: ServerOption = None,
) -> None:
    """Find the images for which ANSWER is the likeliest answer to QUESTION: paths, best first, with scores.

    The score is the probability of --answer among --choices (default yes,no). Streams any
    number of images in flat memory; an image that cannot be read is an error (exit 1 at
    the end), and the rest are still ranked.
    """
    with user_errors():
        from .backends.base import check_question
        from .io.media import image_sources
        from .io.progress import progress_bar
        from .run.find import FindOptions, find as run_find

        among = _choices(choices, choices_file) or ("yes", "no")
        if answer.strip() not in among:
            raise UsageError(f"--answer {answer!r} is not one of the choices ({', '.join(among)})")
        opts = FindOptions(check_question(question), answer.strip(), among, top, threshold, batch_size)
        failed = 0
        with progress_bar() as progress:
            task = progress.add_task("finding", total=None, status="")
            found = run_find(lambda: _checked(_engine(model, device, dtype, server), among), image_sources(images), opts,
                             lambda n: progress.update(task, advance=n))
            for item in found:
                failed += item.error is not None
                _print_found(item, jsonl)
        if failed:
            raise typer.Exit(EXIT_ERROR)


def _checked(engine, choices: tuple[str, ...]):
    """The engine, once it has said it can answer among `choices` (a classifier knows a fixed vocabulary)."""
    check = getattr(engine, "check_choices", None)
    if check is not None:
        check(choices)
    return engine


def _print_found(item, jsonl: bool) -> None:
    if jsonl:
        from .io.records import dumps

        print(dumps({"image": item.image, "score": item.score, "error": item.error}), flush=True)
    elif item.error is None:
        print(f"{item.score:.6g}\t{item.image}", flush=True)
    else:
        print(f"vqa: warning: {item.image}: {item.error}", file=sys.stderr)


@app.command()
def models(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the available models: the shipped bundles and the VQA models in the Hugging Face cache."""
    with user_errors():
        from .io import output
        from .backends.registry import list_models

        entries = list_models()
        if json_output:
            output.print_json(entries)
        else:
            output.print_models(entries)


@app.command()
def pull(
    model: Annotated[str, typer.Argument(help="Hugging Face model id, e.g. Salesforce/blip-vqa-base.")],
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit to pin.")] = None,
) -> None:
    """Download a pretrained VQA model (safetensors, configs, tokenizer) into the Hugging Face cache."""
    with user_errors():
        from .backends.registry import BACKENDS, entry
        from .store.hub import download

        folder = Path(download(model, revision))
        found = entry(model, folder)
        if found is None:
            kinds = ", ".join(b.kind for b in BACKENDS)
            raise InputError(f"{model} downloaded to {folder}, but it is not a model vqa can run ({kinds})")
        print(folder)
        print(f"vqa: {model} ({found['kind']}) is ready; use it with -m {model}", file=sys.stderr)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write images/, questions.csv and scenes.json into.")],
    images: Annotated[int, typer.Option("--images", min=1, help="Number of scenes.")] = 100,
    videos: Annotated[
        Optional[int], typer.Option("--videos", min=1, help="Render this many 8 s clips of a moving world instead: videos/, videos.jsonl, scenes.json.")
    ] = None,
    questions_per_image: Annotated[int, typer.Option("--questions-per-image", min=1)] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    paraphrase: Annotated[bool, typer.Option("--paraphrase", help="Reword every question with the held-out wordings, to measure (same answers).")] = False,
    reword: Annotated[float, typer.Option("--reword", min=0.0, max=1.0, help="Reword this share of the questions with the training wordings.")] = 0.0,
    sampling: Annotated[
        Sampling, typer.Option("--sampling", help="balanced: answers balanced per family (for training). uniform: questions drawn uniformly from all the spec allows (for measuring).")
    ] = Sampling.balanced,
) -> None:
    """Render Shapes scenes and write questions with their answers (see models/shapes/README.md).

    With --videos N, render N clips (H.264 MP4, 10 fps) whose objects move, enter and leave;
    each question's row in videos.jsonl holds its true answer at every frame, for `vqa eval`.
    """
    with user_errors():
        from .io.progress import progress_bar
        from .shapes.synth import synthesize, synthesize_videos

        if videos is not None:
            if paraphrase or reword:
                raise UsageError("--paraphrase and --reword are for image scenes, not --videos")
            with progress_bar() as progress:
                task = progress.add_task("rendering clips", total=videos, status="")
                n = synthesize_videos(out, videos, questions_per_image, seed, lambda: progress.update(task, advance=1), sampling.value)
            print(f"wrote {videos} videos and {n} questions to {out}", file=sys.stderr)
            return
        with progress_bar() as progress:
            task = progress.add_task("rendering scenes", total=images, status="")
            n = synthesize(out, images, questions_per_image, seed, lambda: progress.update(task, advance=1), paraphrase, reword, sampling.value)
        print(f"wrote {images} images and {n} questions to {out}", file=sys.stderr)


def train(data: str, out: Path, device: str | None, **values) -> None:
    """Train a bundle on DATA. Resumes from OUT.checkpoint/ when a run was interrupted.

    With --scenes (the scenes.json `vqa synth` writes), the head also learns to find the
    objects and answers from object tokens as well as the grid; the annotations are used
    for training only.
    """
    with user_errors():
        import enum
        import platform
        import shlex

        from .backends.device import choose_device
        from .io.progress import progress_bar
        from .train.loop import train as run_training
        from .train.options import TrainOptions

        values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}
        opts = TrainOptions(
            data=data, out=str(out), device=choose_device(device), **values,
            provenance={"command": "vqa " + shlex.join(sys.argv[1:]), "machine": platform.platform()},
        )
        with progress_bar() as progress:
            summary = run_training(opts, report=lambda line: progress.console.print(line), progress=progress)
        print(
            f"best validation accuracy {summary['best_val_accuracy']:.2%} after {summary['steps']} steps "
            f"in {summary['minutes']:.1f} min; bundle in {out}",
            file=sys.stderr,
        )


def _train_signature(command):
    """Give `train` one CLI option per TrainOptions field (train/options.py), declared there once."""
    import enum
    import inspect
    import typing
    from dataclasses import fields

    from .train.options import TrainOptions, cli_fields, parse_int_list

    hints = typing.get_type_hints(TrainOptions)
    helps = {f.name: f.metadata.get("help") for f in fields(TrainOptions)}
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("data", keyword, annotation=Annotated[str, typer.Argument(metavar="DATA", help=helps["data"])]),
        inspect.Parameter("out", keyword, annotation=Annotated[Path, typer.Option("--out", "-o", help=helps["out"])]),
    ]
    for f in cli_fields():
        kind, flags, extra = hints[f.name], [f.metadata["flag"] or "--" + f.name.replace("_", "-")], dict(f.metadata["limits"])
        default = f.default
        if kind == tuple[int, ...]:
            kind, extra["parser"], default = str, parse_int_list, ",".join(str(v) for v in f.default)
        if "choices" in extra:  # typer shows an Enum's values as [a|b|c] and rejects others with exit 2
            kind = enum.Enum(f.name.title(), {c: c for c in extra.pop("choices")}, type=str)
            default = kind(default)
        option = typer.Option(*flags, help=f.metadata["help"], **extra)
        params.append(inspect.Parameter(f.name, keyword, default=default, annotation=Annotated[kind, option]))
    params.append(inspect.Parameter("device", keyword, default=None, annotation=DeviceOption))
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


app.command("train")(_train_signature(train))


@app.command()
def serve(
    model: Annotated[
        Optional[list[str]],
        typer.Option("-m", "--model", help="A model to load and keep warm (repeatable). Default: $VQA_MODEL, else shapes."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind; anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8765,
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", envvar="VQA_API_KEY", help="Require Authorization: Bearer KEY on every endpoint but /health.")
    ] = None,
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="Seconds SIGTERM waits for the requests already accepted before exiting.")
    ] = 60.0,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
) -> None:
    """Keep models warm behind an HTTP API: /v1/ask and OpenAI-compatible /v1/chat/completions.

    Point the CLI at it with VQA_SERVER=http://127.0.0.1:8765 (or --server). Stops cleanly on
    SIGTERM or Ctrl-C, finishing the requests in flight.
    """
    with user_errors():
        import importlib.util
        import os

        if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")):
            raise InputError("vqa serve needs the serve extra: pip install 'vqa-cli[serve]'")
        from .serve.app import Limits
        from .serve.server import serve as run_server
        from .store import bundle as bundles

        names = model or [os.environ.get("VQA_MODEL") or bundles.DEFAULT_MODEL]
        run_server(names, lambda name: _engine(name, device, dtype), host=host, port=port, api_key=api_key,
                   limits=Limits(grace=grace), shipped=list(bundles.available()))


@app.command("domain")
def domain_stats(
    bundle: Annotated[str, typer.Argument(help="The bundle folder to add statistics to.")],
    data: Annotated[str, typer.Argument(help="The CSV or JSONL it was trained on.")],
    description: Annotated[str, typer.Option("--description", help="What the data shows, in words, for warnings.")] = "its training data",
    val_fraction: Annotated[float, typer.Option(help="The held-out share used in training; its images set the thresholds.")] = 0.05,
    seed: Annotated[int, typer.Option(help="The training seed (it chose the held-out images).")] = 0,
) -> None:
    """Compute a bundle's domain statistics from its training data (`vqa train` does this itself)."""
    with user_errors():
        from .train.domain import fit_bundle

        import shlex

        found = fit_bundle(bundle, data, description, val_fraction=val_fraction, seed=seed, command="vqa " + shlex.join(sys.argv[1:]))
        print(f"vqa: {bundle}: images in domain within distance {found.image_threshold:.2f}, "
              f"questions from similarity {found.question_threshold:.3f}", file=sys.stderr)


@app.command("eval")
def evaluate(
    data: Annotated[str, typer.Argument(help="CSV or JSONL with image, question, answer (and optional family).")],
    model: ModelOption = "shapes",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Questions fused per forward pass.")] = 256,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    instruction: InstructionOption = None,
    max_tokens: MaxTokensOption = None,
    fps: FpsOption = 1.0,
    max_frames: MaxFramesOption = 64,
) -> None:
    """Report accuracy on DATA, overall and per family (VQA soft accuracy when rows have several answers;
    answers are normalised as VQA v2 does, so generated answers are scored fairly).

    Video rows with per-frame truth (vqa synth --videos) also get per-frame accuracy by family,
    the temporal IoU of the "yes" segments, and the whole-video answer's accuracy."""
    with user_errors():
        from .io import output
        from .io.progress import progress_bar
        from .run.evaluate import evaluate as run_eval

        with progress_bar() as progress:
            generation = Generation(instruction, max_tokens)
            report = run_eval(lambda: _engine(model, device, dtype, generation=generation), data, batch_size=batch_size,
                              progress=progress, video=_sampling(fps, max_frames, 0.0, None))
        if json_output:
            output.print_json(report)
        else:
            output.print_eval(report)


if __name__ == "__main__":
    app()
