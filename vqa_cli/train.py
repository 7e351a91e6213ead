"""Train a bundle from rows of (image, question, answer).

Each batch holds a set of images and *all* their questions, and each image is encoded
once per batch: the same trick that makes `vqa batch` fast makes training fast. A frozen
text encoder runs once per distinct question, before training starts.

Reproducible: the model is initialised from the seed, and the order of batches in epoch
e is a permutation drawn from (seed, e), so resuming from a checkpoint replays exactly.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import bundle as bundles
from .errors import InputError
from .images import open_image
from .model.config import HeadConfig
from .model.encoders import SCRATCH_IMAGE_ENCODERS, load_encoder, scratch_image_encoder
from .model.fusion import GEOMETRY_PARAMETERS
from .model.preprocess import Preprocessing
from .model.vqa import VQAModel
from .records import read_rows


@dataclass
class TrainOptions:
    data: str
    out: str
    image_encoder: str = "resnet-small"  # a name in SCRATCH_IMAGE_ENCODERS, or a pretrained HF id/folder
    text_encoder: str = "sentence-transformers/all-MiniLM-L6-v2"
    train_image_encoder: bool | None = None  # default: trained when from scratch, frozen when pretrained
    train_text_encoder: bool = False
    image_size: int = 128
    top_answers: int | None = None  # keep only the N most frequent answers
    epochs: int = 10
    steps: int | None = None  # total optimisation steps; overrides epochs (the schedule follows it)
    images_per_batch: int = 32
    lr: float = 5e-4
    warmup_steps: int = 300
    weight_decay: float = 0.05
    val_fraction: float = 0.05
    eval_every: int = 500  # steps
    seed: int = 0
    width: int = 128
    layers: int = 3
    image_layers: int = 2
    heads: int = 4
    text_layers: tuple[int, ...] = (-1,)
    geometric: bool = False  # distance-aware cross-attention (see FusionBlock); experimental
    device: str = "cpu"
    keep_checkpoint: bool = False
    init: str | None = None  # start from this bundle's weights (same encoders, head shape and answers)
    provenance: dict = field(default_factory=dict)


@dataclass
class Dataset:
    pixels: torch.Tensor  # (N_images, 3, S, S) uint8
    question_ids: torch.Tensor  # (N_rows,) index into the distinct questions
    image_ids: torch.Tensor  # (N_rows,) index into pixels
    labels: torch.Tensor  # (N_rows,) answer index, -1 when outside the vocabulary
    families: list[str]  # (N_rows,) "" when the data has none
    rows_of_image: list[list[int]]


Report = Callable[[str], None]


def train(opts: TrainOptions, report: Report = lambda line: None, progress=None) -> dict:
    """Train, keep the best bundle at opts.out by validation accuracy, and return a summary."""
    from .hub import quiet_transformers

    quiet_transformers()
    torch.manual_seed(opts.seed)
    started = time.time()
    device = torch.device(opts.device)
    out = Path(opts.out)
    checkpoint_dir = out.with_name(out.name + ".checkpoint")

    rows = list(_read_training_rows(opts.data))
    if opts.init:  # fine-tuning keeps the starting bundle's answers, in its order
        answers = bundles.read_config(bundles.find(opts.init))["answers"]
    else:
        answers = vocabulary([r["answer"] for r in rows], opts.top_answers)
    pre = _preprocessing(opts)
    report(f"{len(rows)} rows, {len(answers)} answers; loading images")
    data, questions = _load(rows, answers, Path(opts.data).parent, pre, progress)

    from_scratch = opts.image_encoder in SCRATCH_IMAGE_ENCODERS
    train_image = from_scratch if opts.train_image_encoder is None else opts.train_image_encoder
    from .hub import resolve

    text_source = resolve(opts.text_encoder)
    image_model = scratch_image_encoder(opts.image_encoder) if from_scratch else load_encoder(resolve(opts.image_encoder), "vision")
    text_model = load_encoder(text_source, "text")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_source)
    head_config = HeadConfig(
        image_dim=0, text_dim=0, num_answers=len(answers), width=opts.width,
        layers=opts.layers, image_layers=opts.image_layers, heads=opts.heads, text_layers=tuple(opts.text_layers),
        geometric=opts.geometric,
    )
    from .model.encoders import feature_width

    head_config.image_dim = feature_width(image_model.config)
    head_config.text_dim = feature_width(text_model.config) * len(head_config.text_layers)
    torch.manual_seed(opts.seed)
    model = VQAModel(
        image_model, text_model, head_config, answers,
        train_image_encoder=train_image, train_text_encoder=opts.train_text_encoder,
    ).to(device)

    if opts.init:
        _initialise_from(model, opts.init)
    tokens = tokenizer(questions, padding=True, truncation=True, max_length=pre.max_question_tokens, return_tensors="pt")
    text_cache = None
    if not opts.train_text_encoder:
        report(f"encoding {len(questions)} distinct questions once (frozen text encoder)")
        text_cache = _encode_questions(model, tokens, device)

    train_images, val_images = _split(len(data.pixels), opts.val_fraction, opts.seed)
    steps_per_epoch = math.ceil(len(train_images) / opts.images_per_batch)
    total_steps = opts.steps or steps_per_epoch * opts.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(opts.warmup_steps, total_steps))

    state = {"step": 0, "best_accuracy": -1.0, "history": []}
    if (checkpoint_dir / "state.json").is_file():
        state = _load_checkpoint(checkpoint_dir, model, optimizer, schedule)
        report(f"resuming from step {state['step']} of {total_steps}")

    config = bundles.new_config(
        head_config.to_dict(), answers, pre.to_dict(),
        image_encoder={"saved_inside": train_image, "trained": train_image, "from_scratch": from_scratch},
        text_encoder={"saved_inside": opts.train_text_encoder, "trained": opts.train_text_encoder},
        provenance={**opts.provenance, "options": _public_options(opts)},
    )
    image_source = opts.image_encoder if not from_scratch else "image_encoder"
    task = progress.add_task("training", total=total_steps, completed=state["step"], status="") if progress else None
    running_loss, running_correct, running_count = 0.0, 0, 0
    step = state["step"]
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        order = train_images[torch.randperm(len(train_images), generator=torch.Generator().manual_seed(opts.seed * 1000 + epoch))]
        batch_images = order[position * opts.images_per_batch : (position + 1) * opts.images_per_batch]
        model.train()
        logits, labels, _ = _forward(model, data, batch_images, tokens, text_cache, pre, device)
        keep = labels >= 0
        loss = F.cross_entropy(logits[keep], labels[keep])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        running_loss += loss.item() * int(keep.sum())
        running_correct += int((logits.argmax(-1) == labels).sum())
        running_count += len(labels)
        if progress:
            progress.update(task, advance=1, status=f"loss {running_loss / max(running_count, 1):.3f} acc {running_correct / max(running_count, 1):.1%}")
        if step % opts.eval_every == 0 or step == total_steps:
            val = evaluate_split(model, data, val_images, tokens, text_cache, pre, device, opts.images_per_batch)
            entry = {
                "step": step,
                "train_loss": running_loss / max(running_count, 1),
                "train_accuracy": running_correct / max(running_count, 1),
                "val_accuracy": val["accuracy"],
                "val_families": val["families"],
                "minutes": round((time.time() - started) / 60, 2),
            }
            state["history"].append(entry)
            running_loss, running_correct, running_count = 0.0, 0, 0
            report(
                f"step {step}/{total_steps}  loss {entry['train_loss']:.4f}  train {entry['train_accuracy']:.2%}  "
                f"val {val['accuracy']:.2%}  " + " ".join(f"{k} {v:.1%}" for k, v in sorted(val["families"].items()))
            )
            if val["accuracy"] > state["best_accuracy"]:
                state["best_accuracy"] = val["accuracy"]
                config["provenance"]["validation"] = {"step": step, "accuracy": val["accuracy"], "families": val["families"]}
                bundles.save(
                    bundles.Bundle(out, model, tokenizer, pre, config), out,
                    image_source=image_source, text_source=opts.text_encoder,
                )
            state["step"] = step
            _save_checkpoint(checkpoint_dir, model, optimizer, schedule, state)
    if not opts.keep_checkpoint:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return {"steps": step, "best_val_accuracy": state["best_accuracy"], "minutes": (time.time() - started) / 60, "history": state["history"]}


def _initialise_from(model: VQAModel, reference: str) -> None:
    """Copy a bundle's head (and trained encoders) into a fresh model of the same shape."""
    start = bundles.load(reference)
    if start.model.answers != model.answers:
        raise InputError(f"--init {reference}: its answers differ from the vocabulary of this data")
    try:
        result = model.load_state_dict(start.model.state_dict(), strict=False)
    except RuntimeError as e:
        raise InputError(f"--init {reference}: not the same architecture ({str(e).splitlines()[0]})") from None
    # Only the geometry parameters may be missing; they start from their priors.
    new = [k for k in result.missing_keys if not k.endswith(GEOMETRY_PARAMETERS)]
    if new or result.unexpected_keys:
        raise InputError(f"--init {reference}: not the same architecture ({', '.join(new + result.unexpected_keys)[:200]})")


def vocabulary(answers: list[str], top: int | None = None) -> list[str]:
    """Answers by frequency (ties alphabetical), optionally only the top N."""
    ranked = sorted(Counter(answers).items(), key=lambda kv: (-kv[1], kv[0]))
    return [a for a, _ in ranked[:top] if a]


def _read_training_rows(path: str):
    for number, row in enumerate(read_rows(path), start=1):
        missing = [c for c in ("image", "question", "answer") if not str(row.get(c) or "").strip()]
        if missing:
            raise InputError(f"{path}: row {number} has no {', '.join(missing)}")
        yield {k: str(v) for k, v in row.items() if v is not None}


def _preprocessing(opts: TrainOptions) -> Preprocessing:
    if opts.image_encoder in SCRATCH_IMAGE_ENCODERS:
        return Preprocessing(image_size=opts.image_size)
    from transformers import AutoImageProcessor

    from .hub import resolve

    processor = AutoImageProcessor.from_pretrained(resolve(opts.image_encoder))
    side = _side(getattr(processor, "crop_size", None)) or _side(getattr(processor, "size", None))
    return Preprocessing(image_size=int(side), mean=tuple(processor.image_mean), std=tuple(processor.image_std))


def _side(size) -> int | None:
    """The square side an image processor asks for; its size is an int, a dict or a SizeDict."""
    if size is None or isinstance(size, int):
        return size
    for key in ("height", "shortest_edge"):
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if value:
            return int(value)
    return None


def _load(rows, answers, root: Path, pre: Preprocessing, progress) -> tuple[Dataset, list[str]]:
    image_index: dict[str, int] = {}
    question_index: dict[str, int] = {}
    answer_index = {a: i for i, a in enumerate(answers)}
    q_ids, i_ids, labels, families = [], [], [], []
    rows_of_image: list[list[int]] = []
    for n, row in enumerate(rows):
        i = image_index.setdefault(row["image"], len(image_index))
        if i == len(rows_of_image):
            rows_of_image.append([])
        rows_of_image[i].append(n)
        q_ids.append(question_index.setdefault(row["question"].lower(), len(question_index)))
        i_ids.append(i)
        labels.append(answer_index.get(row["answer"], -1))
        families.append(row.get("family", ""))
    task = progress.add_task("loading images", total=len(image_index), status="") if progress else None
    pixels = torch.empty(len(image_index), 3, pre.image_size, pre.image_size, dtype=torch.uint8)
    for name, i in image_index.items():
        path = Path(name) if Path(name).is_absolute() else root / name
        pixels[i] = pre.to_uint8(open_image(str(path)))
        if progress:
            progress.update(task, advance=1)
    if progress:
        progress.remove_task(task)
    data = Dataset(pixels, torch.tensor(q_ids), torch.tensor(i_ids), torch.tensor(labels), families, rows_of_image)
    return data, list(question_index)


@torch.no_grad()
def _encode_questions(model: VQAModel, tokens, device, batch: int = 256) -> torch.Tensor:
    """Run the frozen text encoder once per distinct question, shortest first so little is padding."""
    model.text_encoder.eval()
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    order = mask.sum(1).argsort()
    cache = torch.zeros(len(ids), ids.shape[1], model.text_encoder.width)  # (N_questions, Tq, Ct)
    for start in range(0, len(ids), batch):
        rows = order[start : start + batch]
        length = int(mask[rows].sum(1).max())
        features = model.text_features(ids[rows, :length].to(device), mask[rows, :length].to(device))
        cache[rows, :length] = features.float().cpu()
    return cache


def _forward(model: VQAModel, data: Dataset, batch_images: torch.Tensor, tokens, text_cache, pre, device):
    """Encode each image of the batch once and answer all of its questions."""
    rows = torch.tensor([r for i in batch_images.tolist() for r in data.rows_of_image[i]])
    local = {int(img): n for n, img in enumerate(batch_images.tolist())}
    image_index = torch.tensor([local[int(i)] for i in data.image_ids[rows]], device=device)  # (Bq,)
    q = data.question_ids[rows]
    mask = tokens["attention_mask"][q]
    length = int(mask.sum(1).max())
    mask = mask[:, :length].to(device)  # (Bq, Tq)
    if text_cache is not None:
        text = model.head.encode_text(text_cache[q, :length].to(device))
    else:
        text = model.encode_text(tokens["input_ids"][q, :length].to(device), mask)
    image = model.encode_image(pre.normalize(data.pixels[batch_images].to(device)))
    logits = model.answer(text, mask, image, image_index).logits  # (Bq, A)
    return logits, data.labels[rows].to(device), rows


@torch.no_grad()
def evaluate_split(model, data, images, tokens, text_cache, pre, device, images_per_batch) -> dict:
    model.eval()
    correct = defaultdict(int)
    total = defaultdict(int)
    for start in range(0, len(images), images_per_batch):
        logits, labels, rows = _forward(model, data, images[start : start + images_per_batch], tokens, text_cache, pre, device)
        hits = (logits.argmax(-1) == labels).tolist()
        for r, hit in zip(rows.tolist(), hits):
            family = data.families[r] or "all"
            correct[family] += hit
            total[family] += 1
    n = sum(total.values())
    return {
        "accuracy": sum(correct.values()) / max(n, 1),
        "families": {f: correct[f] / total[f] for f in total if f != "all"},
    }


def _split(n_images: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n_images * fraction)) if n_images > 1 else 0
    return order[n_val:], order[:n_val]


def _warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _public_options(opts: TrainOptions) -> dict:
    return {k: v for k, v in asdict(opts).items() if k not in ("provenance", "device", "keep_checkpoint")}


def _save_checkpoint(path: Path, model, optimizer, schedule, state: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    opt_state = optimizer.state_dict()
    tensors = {
        f"{param}.{key}": value.detach().cpu().contiguous().reshape(-1) if value.dim() == 0 else value.detach().cpu().contiguous()
        for param, entries in opt_state["state"].items()
        for key, value in entries.items()
    }
    save_file(tensors, tmp / "optimizer.safetensors")
    meta = {**state, "param_groups": opt_state["param_groups"], "schedule": schedule.state_dict()}
    (tmp / "state.json").write_text(json.dumps(meta))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _load_checkpoint(path: Path, model, optimizer, schedule) -> dict:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path / "model.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    opt_state: dict = defaultdict(dict)
    for name, value in load_file(path / "optimizer.safetensors").items():
        param, key = name.split(".", 1)
        opt_state[int(param)][key] = value.reshape(()) if key == "step" else value
    optimizer.load_state_dict({"state": dict(opt_state), "param_groups": meta.pop("param_groups")})
    schedule.load_state_dict(meta.pop("schedule"))
    return meta
