"""The training loop: batches of images with all their questions, validation, the best bundle kept.

Each batch holds a set of images and *all* their questions, and each image is encoded
once per batch: the same trick that makes `vqa batch` fast makes training fast. A frozen
text encoder runs once per distinct question, before training starts.

Reproducible: the model is initialised from the seed, and the order of batches in epoch
e is a permutation drawn from (seed, e), so resuming from a checkpoint replays exactly.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import InputError
from ..store import bundle as bundles
from . import build, checkpoint
from . import data as datasets
from .objectives import ObjectTargets, answer_loss, detection_loss, detection_quality
from ..model.preprocess import Preprocessing
from .options import TrainOptions

Report = Callable[[str], None]


@dataclass
class Run:
    """Everything one training run holds."""

    opts: TrainOptions
    data: datasets.Dataset
    built: build.Built
    targets: ObjectTargets | None  # auxiliary per-object classifiers, with --scenes
    tokens: dict  # the distinct questions, tokenized: (N_questions, Tq) each
    text_cache: torch.Tensor | None  # (N_questions, Tq, Ct) with a frozen text encoder
    pre: Preprocessing
    device: torch.device
    train_images: torch.Tensor
    val_images: torch.Tensor

    @property
    def model(self):
        return self.built.model

    def modules(self) -> nn.ModuleDict:
        """What the optimizer trains and the checkpoint saves."""
        return nn.ModuleDict({"model": self.model, **({"targets": self.targets} if self.targets else {})})


def train(opts: TrainOptions, report: Report = lambda line: None, progress=None) -> dict:
    """Train, keep the best bundle at opts.out by validation accuracy, and return a summary."""
    from ..store.hub import quiet_transformers

    quiet_transformers()
    bundles.check_writable(Path(opts.out))
    torch.manual_seed(opts.seed)
    started = time.time()
    run, answers, pre = prepare(opts, report, progress)
    steps_per_epoch = math.ceil(len(run.train_images) / opts.images_per_batch)
    total = opts.steps or steps_per_epoch * opts.epochs
    params = [p for p in run.modules().parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(opts.warmup_steps, total))
    out = Path(opts.out)
    saved = out.with_name(out.name + ".checkpoint")
    state = {"step": 0, "best_accuracy": -1.0, "history": []}
    if checkpoint.exists(saved):
        state = checkpoint.load(saved, run.modules(), optimizer, schedule)
        report(f"resuming from step {state['step']} of {total}")
    config = bundle_config(run, answers, pre)
    task = progress.add_task("training", total=total, completed=state["step"], status="") if progress else None
    running = defaultdict(float)
    for step in range(state["step"] + 1, total + 1):
        epoch, position = divmod(step - 1, steps_per_epoch)
        order = run.train_images[torch.randperm(len(run.train_images), generator=torch.Generator().manual_seed(opts.seed * 1000 + epoch))]
        losses = train_step(run, order[position * opts.images_per_batch : (position + 1) * opts.images_per_batch], optimizer, params)
        schedule.step()
        for key, value in losses.items():
            running[key] += value
        if progress:
            progress.update(task, advance=1, status=f"loss {running['loss'] / max(running['rows'], 1):.3f} acc {running['correct'] / max(running['rows'], 1):.1%}")
        if step % opts.eval_every == 0 or step == total:
            entry = validate(run, step, running, started, report)
            state["history"].append(entry)
            running = defaultdict(float)
            if entry["val_accuracy"] > state["best_accuracy"]:
                state["best_accuracy"] = entry["val_accuracy"]
                config["provenance"]["validation"] = {k: v for k, v in entry.items() if k.startswith(("step", "val_", "detection", "minutes"))}
                bundles.save(bundles.Bundle(out, run.model, run.built.tokenizer, pre, config), out,
                             image_source=opts.image_encoder if not run.built.from_scratch else "image_encoder", text_source=opts.text_encoder)
            state["step"] = step
            checkpoint.save(saved, run.modules(), optimizer, schedule, state)
    if state["best_accuracy"] >= 0:
        from .domain import fit_bundle

        domain = fit_bundle(opts.out, opts.data, opts.domain_name, val_fraction=opts.val_fraction, seed=opts.seed)
        report(f"domain statistics: images within {domain.image_threshold:.1f}, questions from {domain.question_threshold:.3f}")
    if not opts.keep_checkpoint:
        shutil.rmtree(saved, ignore_errors=True)
    return {"steps": state["step"], "best_val_accuracy": state["best_accuracy"], "minutes": (time.time() - started) / 60, "history": state["history"]}


def prepare(opts: TrainOptions, report: Report, progress) -> tuple[Run, list[str], object]:
    """Rows, vocabulary, images, annotations, the model and the text cache."""
    if opts.object_tokens and not opts.scenes:
        raise InputError("--objects needs --scenes: the detector learns from annotated object centres")
    rows = datasets.read_training_rows(opts.data)
    if len({r["image"] for r in rows}) < 2:
        raise InputError(f"{opts.data}: vqa train needs rows about at least 2 images (one to train on, one to validate); "
                         f"it has {len(rows)} rows about {len({r['image'] for r in rows})}")
    if opts.init:  # fine-tuning keeps the starting bundle's answers, in its order
        answers = bundles.read_config(bundles.find(opts.init))["answers"]
    else:
        answers = datasets.vocabulary([r["answer"] for r in rows], opts.top_answers)
    pre = build.preprocessing(opts)
    report(f"{len(rows)} rows, {len(answers)} answers; loading images")
    data, images, sizes = datasets.load(rows, answers, Path(opts.data).parent, pre, progress)
    if opts.scenes:
        data.objects = datasets.read_scenes(opts.scenes, images, sizes, opts.object_tokens)
        report(f"{int(data.objects.mask.sum())} annotated objects, {len(data.objects.classes)} targets each")
    device = torch.device(opts.device)
    built = build.model(opts, answers)
    built.model.to(device)
    targets = ObjectTargets(opts.width, data.objects.classes).to(device) if data.objects else None
    tokens = pre.tokenize(built.tokenizer, data.questions)
    text_cache = None
    if not opts.train_text_encoder:
        report(f"encoding {len(data.questions)} distinct questions once (frozen text encoder)")
        text_cache = build.encode_questions(built.model, tokens, device)
    train_images, val_images = datasets.split(len(data.pixels), opts.val_fraction, opts.seed)
    return Run(opts, data, built, targets, tokens, text_cache, pre, device, train_images, val_images), answers, pre


def bundle_config(run: Run, answers: list[str], pre) -> dict:
    opts, built = run.opts, run.built
    return bundles.new_config(
        built.model.config.to_dict(), answers, pre.to_dict(),
        image_encoder={"saved_inside": built.train_image, "trained": built.train_image, "from_scratch": built.from_scratch},
        text_encoder={"saved_inside": opts.train_text_encoder, "trained": opts.train_text_encoder},
        provenance={**opts.provenance, "options": opts.public(),
                    **({"object_targets": run.data.objects.classes} if run.data.objects else {})},
    )


def forward(run: Run, batch_images: torch.Tensor, given_centres: bool):
    """Encode each image of the batch once and answer all its questions -> (logits, labels, rows, image embeds)."""
    data, model, device = run.data, run.model, run.device
    rows = torch.tensor([r for i in batch_images.tolist() for r in data.rows_of_image[i]])
    local = {int(img): n for n, img in enumerate(batch_images.tolist())}
    image_index = torch.tensor([local[int(i)] for i in data.image_ids[rows]], device=device)  # (Bq,)
    q = data.question_ids[rows]
    mask = run.tokens["attention_mask"][q]
    length = int(mask.sum(1).max())
    mask = mask[:, :length].to(device)  # (Bq, Tq)
    if run.text_cache is not None:
        text = model.head.encode_text(run.text_cache[q, :length].to(device))
    else:
        text = model.encode_text(run.tokens["input_ids"][q, :length].to(device), mask)
    centres = centre_mask = None
    if given_centres and data.objects is not None:
        centres, centre_mask = data.objects.centres[batch_images].to(device), data.objects.mask[batch_images].to(device)
    image = model.encode_image(run.pre.normalize(data.pixels[batch_images].to(device)), centres, centre_mask)
    logits = model.answer(text, mask, image, image_index).logits  # (Bq, A)
    return logits, data.labels[rows].to(device), rows, image


def train_step(run: Run, batch_images: torch.Tensor, optimizer, params) -> dict:
    """One optimisation step on the answers and, with annotations, the detector and object targets."""
    run.modules().train()
    logits, labels, rows, image = forward(run, batch_images, given_centres=True)
    loss = answer_loss(logits, labels)
    if run.targets is not None:  # the object tokens sit at the annotated centres, which forward() passed in
        objects = image.objects
        targets = {n: t[batch_images].to(run.device) for n, t in run.data.objects.targets.items()}
        loss = loss + run.opts.object_loss_weight * run.targets.loss(objects.object_tokens, targets)
        loss = loss + run.opts.detection_loss_weight * detection_loss(objects, objects.centres, objects.found)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    keep = labels >= 0
    return {"loss": loss.item() * int(keep.sum()), "correct": int((logits.argmax(-1) == labels).sum()), "rows": len(labels)}


def validate(run: Run, step: int, running: dict, started: float, report: Report) -> dict:
    val = evaluate_split(run, run.val_images)
    entry = {
        "step": step,
        "train_loss": running["loss"] / max(running["rows"], 1),
        "train_accuracy": running["correct"] / max(running["rows"], 1),
        "val_accuracy": val["accuracy"],
        "val_families": val["families"],
        **({"detection": val["detection"]} if "detection" in val else {}),
        "minutes": round((time.time() - started) / 60, 2),
    }
    detection = val.get("detection")
    found = f"  found {detection['found']:.2%} err {detection['error_px']:.2f}px false {detection['false']}" if detection else ""
    report(
        f"step {step}  loss {entry['train_loss']:.4f}  train {entry['train_accuracy']:.2%}  val {val['accuracy']:.2%}  "
        + " ".join(f"{k} {v:.1%}" for k, v in sorted(val["families"].items())) + found
    )
    return entry


@torch.no_grad()
def evaluate_split(run: Run, images: torch.Tensor) -> dict:
    """Accuracy overall and per family on held-out images, answering from detected objects as `vqa ask` does."""
    run.modules().eval()
    correct, total = defaultdict(int), defaultdict(int)
    counts = defaultdict(float)
    for start in range(0, len(images), run.opts.images_per_batch):
        batch = images[start : start + run.opts.images_per_batch]
        logits, labels, rows, image = forward(run, batch, given_centres=False)
        for r, hit in zip(rows.tolist(), (logits.argmax(-1) == labels).tolist()):
            family = run.data.families[r] or "all"
            correct[family] += hit
            total[family] += 1
        if image.objects is not None:
            objects = run.data.objects
            quality = detection_quality(image.objects, objects.centres[batch].to(run.device), objects.mask[batch].to(run.device), objects.sizes[batch])
            for key, value in quality.items():
                counts[key] += value
    n = sum(total.values())
    result = {"accuracy": sum(correct.values()) / max(n, 1), "families": {f: correct[f] / total[f] for f in total if f != "all"}}
    if counts:
        result["detection"] = {
            "found": counts["found"] / max(counts["objects"], 1), "false": int(counts["false"]),
            "error_px": counts["error_sum"] / max(counts["found"], 1),
        }
    return result


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor
