"""BLIP and ViLT question-answering checkpoints, loaded with the Auto classes, safetensors only.

BLIP is two-stream: a ViT encodes the image, and a BERT text encoder with cross-attention
reads the question against it; an answer decoder then generates the answer. The ViT
output is kept and reused for every question about that image.

ViLT is single-stream: image patches and question tokens go through one transformer
together, so nothing can be computed once per image except the pixel preprocessing.
It classifies over a fixed answer vocabulary, with an independent sigmoid per answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import torch

from .base import Answer, DeviceEngine, Generation, chosen, ranked_answers, score, vocabulary_indices
from ..errors import ModelError, UsageError


def check_safetensors(folder: Path, reference: str) -> None:
    """Refuse checkpoints that only have pickle weights: unpickling can run arbitrary code."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
    if pickles:
        raise ModelError(
            f"refusing to load {reference}: it has only pickle weights ({', '.join(pickles)}), which can run "
            f"code when loaded; use a checkpoint with model.safetensors"
        )
    raise ModelError(f"no weights found for {reference}: expected model.safetensors in {folder}")


T = TypeVar("T")
MAX_ANSWER_TOKENS = 12  # BLIP's answers are a few words; --max-tokens changes it


@dataclass
class PixelState:
    """Per-image inputs kept between encode_images and answer."""

    pixel_values: torch.Tensor  # (Bi, 3, H, W)
    pixel_mask: torch.Tensor | None = None  # (Bi, H, W), ViLT only
    image_embeds: torch.Tensor | None = None  # (Bi, Ti, D), BLIP only


def open_checkpoint(folder: Path, reference: str, load: Callable[[], T]) -> T:
    """What `load()` returns, once the checkpoint is known to run no code of its own and to have
    safetensors weights; whatever transformers raises while loading becomes one ModelError line."""
    from ..store.hub import quiet_transformers, refuse_remote_code

    quiet_transformers()
    refuse_remote_code(folder, reference)
    check_safetensors(folder, reference)
    try:
        return load()
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"cannot load {reference}: {str(e).strip().splitlines()[0]}") from None


class CheckpointEngine(DeviceEngine):
    """An engine over a Hugging Face checkpoint folder, named by the -m value that found it."""

    kind = "pretrained"

    def __init__(self, folder: Path, reference: str, device: str, dtype):
        super().__init__(device, dtype)
        self.folder, self.reference = folder, reference

    @property
    def name(self) -> str:
        return self.reference

    @property
    def model_info(self) -> dict:
        return {"name": self.reference, "kind": self.kind, "path": str(self.folder)}


class PretrainedEngine(CheckpointEngine):
    """Shared loading and bookkeeping for BLIP and ViLT."""

    def __init__(self, folder: Path, reference: str, device: str, dtype):
        from transformers import AutoModelForVisualQuestionAnswering, AutoProcessor

        self.model, self.processor = open_checkpoint(folder, reference, lambda: (
            AutoModelForVisualQuestionAnswering.from_pretrained(folder, use_safetensors=True, trust_remote_code=False),
            AutoProcessor.from_pretrained(folder, trust_remote_code=False),
        ))
        self.model.eval().to(device=device, dtype=dtype)
        super().__init__(folder, reference, device, dtype)

    @classmethod
    def load(cls, folder: Path, reference: str, device: str, dtype) -> "PretrainedEngine":
        return cls(folder, reference, device, dtype)

    def _pixels(self, images: list) -> dict:
        inputs = self.processor.image_processor(images=images, return_tensors="pt")
        return {k: v.to(self.device) for k, v in inputs.items()}

    def _tokens(self, questions: list[str]) -> dict:
        tokens = self.processor.tokenizer(questions, padding=True, truncation=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in tokens.items()}



class ViltEngine(PretrainedEngine):
    kind = "vilt-vqa"
    why_not = {"explain": "it needs cross-attention from the question to image tokens, and ViLT (single-stream) has none",
               "generate": "it chooses among a fixed vocabulary of answers; it does not generate them"}

    def _labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(len(self.model.config.id2label))]

    def check_choices(self, choices: tuple[str, ...]) -> None:
        vocabulary_indices(choices, self._labels(), self.name)

    @torch.inference_mode()
    def encode_images(self, images: list) -> PixelState:
        inputs = self._pixels(images)
        return PixelState(inputs["pixel_values"].to(self.dtype), inputs.get("pixel_mask"))

    @torch.inference_mode()
    def answer(self, state: PixelState, questions, image_index=None, top_k: int = 1, explain: bool = False, choices=None):
        index = torch.tensor(image_index or [0] * len(questions), device=self.device)
        tokens = self._tokens(questions)
        pixel_mask = state.pixel_mask[index] if state.pixel_mask is not None else None
        logits = self.model(**tokens, pixel_values=state.pixel_values[index], pixel_mask=pixel_mask).logits
        probs = logits.float().sigmoid()  # ViLT is trained with a per-answer binary loss
        answers = ranked_answers(questions, probs, self.model.config.id2label, top_k)
        for i, options in enumerate(choices or []):
            if options:  # each choice's sigmoid, divided by their sum over the set
                columns = vocabulary_indices(options, self._labels(), self.name)
                log_sigmoid = torch.nn.functional.logsigmoid(logits[i, columns].double())
                answers[i] = chosen(questions[i], dict(zip(options, log_sigmoid.tolist())))
        return answers


class BlipEngine(PretrainedEngine):
    kind = "blip-vqa"
    why_not = {"explain": "maps are drawn for vqa bundles only; BLIP's cross-attention maps are not drawn yet"}
    capabilities = frozenset({"generate"})
    generation = Generation()

    def configure(self, generation: Generation) -> None:
        if generation.instruction is not None:
            raise UsageError(f"{self.name} takes no --instruction: BLIP's answer decoder reads the question alone")
        self.generation = generation

    @torch.inference_mode()
    def encode_images(self, images: list) -> PixelState:
        pixel_values = self._pixels(images)["pixel_values"].to(self.dtype)
        image_embeds = self.model.vision_model(pixel_values=pixel_values)[0]  # (Bi, Ti, D): reused per question
        return PixelState(pixel_values, image_embeds=image_embeds)

    @torch.inference_mode()
    def answer(self, state: PixelState, questions, image_index=None, top_k: int = 1, explain: bool = False, choices=None):
        model = self.model
        index = torch.tensor(image_index or [0] * len(questions), device=self.device)
        tokens = self._tokens(questions)
        image_embeds = state.image_embeds[index]  # (Bq, Ti, D)
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        question_embeds = model.text_encoder(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
            encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask, return_dict=False,
        )[0]  # (Bq, Tq, D)
        k = max(1, top_k)
        sequences = self._generate(question_embeds, tokens["attention_mask"], k)  # (Bq * k, L)
        expanded = question_embeds.repeat_interleave(k, dim=0)
        expanded_mask = tokens["attention_mask"].repeat_interleave(k, dim=0)
        probabilities = [math.exp(lp) for lp in self._sequence_logprob(sequences, expanded, expanded_mask)]  # (Bq * k,)
        texts = self.processor.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        answers = []
        for n, question in enumerate(questions):
            ranked: dict[str, float] = {}
            for j in range(n * k, (n + 1) * k):
                text = texts[j].strip()
                ranked[text] = max(ranked.get(text, 0.0), probabilities[j])  # beams can decode alike
            ordered = sorted(ranked.items(), key=lambda kv: -kv[1])
            top = [{"answer": a, "score": score(p)} for a, p in ordered]
            answers.append(Answer(question, top[0]["answer"], top[0]["score"], top))
        for i, options in enumerate(choices or []):
            if options:
                answers[i] = chosen(questions[i], self._choice_logprobs(options, question_embeds[i], tokens["attention_mask"][i]))
        return answers

    def _choice_logprobs(self, options: tuple[str, ...], question_embeds, question_mask) -> dict[str, float]:
        """log P(choice, then the end of the answer | image, question), all choices in one teacher-forced pass."""
        cfg = self.model.config.text_config
        pieces = [self.processor.tokenizer.encode(c, add_special_tokens=False) for c in options]
        length = 2 + max(len(p) for p in pieces)
        rows = [[self.model.decoder_start_token_id, *p, cfg.sep_token_id] + [cfg.pad_token_id] * (length - len(p) - 2) for p in pieces]
        sequences = torch.tensor(rows, device=self.device)  # (C, L): bos, the choice, EOS, padding
        n = len(options)
        return dict(zip(options, self._sequence_logprob(sequences, question_embeds.expand(n, -1, -1), question_mask.expand(n, -1))))

    def _generate(self, question_embeds, question_mask, k: int) -> torch.Tensor:
        cfg = self.model.config.text_config
        if self.generation.temperature > 0 and self.generation.seed is not None:
            torch.manual_seed(self.generation.seed)
        bos = torch.full((question_embeds.shape[0], 1), self.model.decoder_start_token_id, device=self.device)
        return self.model.text_decoder.generate(
            input_ids=bos, eos_token_id=cfg.sep_token_id, pad_token_id=cfg.pad_token_id,
            encoder_hidden_states=question_embeds, encoder_attention_mask=question_mask,
            num_beams=k, num_return_sequences=k, max_new_tokens=self.generation.max_tokens or MAX_ANSWER_TOKENS,
            do_sample=self.generation.temperature > 0, temperature=self.generation.temperature or None,
        )

    def _sequence_logprob(self, sequences, question_embeds, question_mask) -> list[float]:
        """log P(answer | image, question): the sum of each token's log-probability, up to and including EOS."""
        cfg = self.model.config.text_config
        logits = self.model.text_decoder(
            input_ids=sequences, encoder_hidden_states=question_embeds, encoder_attention_mask=question_mask,
            return_dict=True,
        ).logits.float()  # (N, L, V)
        logprobs = logits[:, :-1].log_softmax(-1).gather(-1, sequences[:, 1:, None])[..., 0]  # (N, L-1)
        targets = sequences[:, 1:]
        after_eos = (targets == cfg.sep_token_id).long().cumsum(-1) - (targets == cfg.sep_token_id).long()
        keep = (after_eos == 0) & (targets != cfg.pad_token_id)  # tokens up to and including the first EOS
        return (logprobs.double() * keep).sum(-1).tolist()
