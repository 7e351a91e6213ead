"""Today's vision-language models (SmolVLM, Qwen-VL, ...): AutoModelForImageTextToText checkpoints.

A question is one user turn holding the image and the text `instruction + "\\n" + question`,
put through the checkpoint's own chat template with the generation prompt. The answer is
what the model generates from there, greedy by default.

The image is encoded once for every question about it: the prompt up to where questions
differ (the image's tokens, the instruction) is prefilled once per image, and each question
continues from a copy of that prefix's KV cache. Greedy answers are token for token those
of a plain `generate` on the whole prompt.

A video goes in whole (the "video" capability): its sampled frames as a sequence of images in
one user turn, each after its time ("0.0 s:"), then the question; frames are not tiled. The
checkpoints' video processors need torchvision, which vqa does without; every model that
takes several images takes a video this way.

Processors that bundle a video processor need torchvision, even for images; without it the
processor is built from its image processor, tokenizer and chat template alone.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from .base import Answer, Generation, chosen, score
from .pretrained import CheckpointEngine, open_checkpoint
from ..errors import ModelError

DEFAULT_INSTRUCTION = "Answer the question using a single word or phrase."
DEFAULT_MAX_TOKENS = 32


@dataclass
class Prefix:
    """One image's prefilled prompt prefix: its token ids and the KV cache after them."""

    image: Any  # the PIL image, or a Video (its frames)
    ids: list[int] | None = None  # None until a question about the image arrives
    cache: Any = None
    rope_deltas: Any = None  # Qwen-VL keeps M-RoPE offsets on the model, computed with the image


class VisionLanguageEngine(CheckpointEngine):
    kind = "vision-language"
    capabilities = frozenset({"generate", "video"})
    why_not = {"explain": "maps are drawn for vqa bundles only; a generative model's attention is not drawn yet"}

    def __init__(self, model, processor, folder: Path, reference: str, device: str, dtype):
        super().__init__(folder, reference, device, dtype)
        processor.image_processor = RememberedImages(processor.image_processor)  # each question reuses its image's pixels
        self.model, self.processor = model, processor
        self.generation = Generation()
        self.lock = threading.RLock()  # one generation at a time: Qwen-VL keeps per-request state on the model

    def session(self) -> "VisionLanguageEngine":
        """The same model with generation settings of its own (a server's CLI session)."""
        return copy.copy(self)

    @classmethod
    def load(cls, folder: Path, reference: str, device: str, dtype) -> "VisionLanguageEngine":
        from transformers import AutoModelForImageTextToText

        model, processor = open_checkpoint(folder, reference, lambda: (
            AutoModelForImageTextToText.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, dtype=dtype),
            load_processor(folder),
        ))
        return cls(model.eval().to(device), processor, folder, reference, device, dtype)

    def configure(self, generation: Generation) -> None:
        self.generation = generation

    def encode_images(self, images: list) -> list[Prefix]:
        """One Prefix per image; each is prefilled when the first question about it arrives,
        since the prefix is the prompt's, not the image's alone."""
        return [Prefix(image) for image in images]

    @torch.inference_mode()
    def answer(self, prefixes: list[Prefix], questions: list[str], image_index: list[int] | None = None,
               top_k: int = 1, explain: bool = False, choices: list | None = None) -> list[Answer]:
        index = image_index or [0] * len(questions)
        options = choices or [None] * len(questions)
        with self.lock:
            return [self._answer(prefixes[i], question, top_k, among) for question, i, among in zip(questions, index, options)]

    def prompt(self, question: str, times: list[float] | None = None) -> list[dict]:
        """The chat: one user turn holding the image (or a video's frames, each after its time) and the
        (instructed) question."""
        instruction = self.generation.instruction
        text = question if instruction == "" else f"{instruction or DEFAULT_INSTRUCTION}\n{question}"
        if times is None:
            media = [{"type": "image"}]
        else:
            media = [part for t in times for part in ({"type": "text", "text": f"{t:g} s:"}, {"type": "image"})]
        return [{"role": "user", "content": [*media, {"type": "text", "text": text}]}]

    def inputs(self, media, question: str) -> dict:
        """The processor's tensors for one question about one image or video, on the device."""
        video = hasattr(media, "frames")  # an io.video.Video
        chat = self.prompt(question, media.times if video else None)
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        untiled = {"do_image_splitting": False} if video and hasattr(self.processor.image_processor, "do_image_splitting") else {}
        images = [list(media.frames)] if video else [[media]]
        inputs = self.processor(text=[text], images=images, return_tensors="pt", **untiled)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}

    def _answer(self, prefix: Prefix, question: str, top_k: int, choices: tuple[str, ...] | None = None) -> Answer:
        inputs = self.inputs(prefix.image, question)
        ids = inputs["input_ids"][0].tolist()
        if prefix.ids is None:
            self._prefill(prefix)
        reuse = len(ids) > len(prefix.ids) and ids[: len(prefix.ids)] == prefix.ids
        if choices:
            return chosen(question, self._choice_logprobs(prefix, inputs, reuse, choices))
        tokens, logprob, first = self._generate(prefix, inputs, reuse)
        answers = {self._text(tokens): math.exp(logprob)}
        if top_k > 1:
            for token in first.topk(min(top_k + 1, first.shape[-1])).indices.tolist():  # other likely first tokens,
                rest, rest_logprob, _ = self._generate(prefix, inputs, reuse, forced=[token])  # each continued
                text = self._text([token, *rest])
                if text and text not in answers:
                    answers[text] = math.exp(first[token].item() + rest_logprob)
        ranked = sorted(answers.items(), key=lambda kv: -kv[1])[:top_k]
        best = self._text(tokens)
        top = [{"answer": text, "score": score(p)} for text, p in ranked] if top_k > 1 else [{"answer": best, "score": score(answers[best])}]
        return Answer(question, best, score(answers[best]), top)

    def _prefill(self, prefix: Prefix) -> None:
        """Prefill the prompt up to where questions begin: the tokens two different questions share."""
        a, b = (self.inputs(prefix.image, q) for q in ("a", "b"))
        ids_a, ids_b = a["input_ids"][0].tolist(), b["input_ids"][0].tolist()
        shared = next((n for n, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
        prefix.ids = ids_a[:shared]
        prefix.cache = self.model(**_truncated(a, shared), use_cache=True).cache
        prefix.rope_deltas = _rope_deltas(self.model)

    def _generate(self, prefix: Prefix, inputs: dict, reuse: bool, forced: list[int] = ()):
        """(tokens generated after the prompt and `forced`, their log-probability, the first step's log-probabilities).

        Probabilities are the model's own (temperature 1), whatever the sampling temperature."""
        options = self.generation
        kwargs = dict(inputs)
        if reuse:  # continue from a copy of the prefix's cache, and never pass pixels: the cache holds the image
            _set_rope_deltas(self.model, prefix.rope_deltas)
            kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "mm_token_type_ids")}
            kwargs["cache"] = copy.deepcopy(prefix.cache)
        if forced:
            kwargs = _extended(kwargs, forced)
        if options.temperature > 0 and options.seed is not None:
            torch.manual_seed(options.seed)
        out = self.model.generate(
            **kwargs, max_new_tokens=max(1, (options.max_tokens or DEFAULT_MAX_TOKENS) - len(forced)), do_sample=options.temperature > 0,
            temperature=options.temperature or None, top_p=None, top_k=None, return_dict_in_generate=True, output_logits=True,
        )
        tokens = out.sequences[0, kwargs["input_ids"].shape[1]:].tolist()
        steps = [torch.log_softmax(step[0].float(), -1) for step in out.logits]
        return tokens, sum(step[t].item() for step, t in zip(steps, tokens)), steps[0]

    def _choice_logprobs(self, prefix: Prefix, inputs: dict, reuse: bool, choices: tuple[str, ...]) -> dict[str, float]:
        """log P(the choice's tokens, then the end of the answer | prompt), for every choice: the prompt
        once (continuing the prefix's cache), then all choices in one batched teacher-forced pass."""
        end = self.model.generation_config.eos_token_id
        end = end[0] if isinstance(end, (list, tuple)) else end
        pieces = [self.processor.tokenizer.encode(c, add_special_tokens=False) + [end] for c in choices]
        if reuse:  # the question's tokens, after a copy of the prefix's cache
            _set_rope_deltas(self.model, prefix.rope_deltas)
            out = self.model(input_ids=inputs["input_ids"][:, len(prefix.ids):], cache=copy.deepcopy(prefix.cache), use_cache=True)
        else:
            out = self.model(**inputs, use_cache=True)
        first = out.logits[0, -1].double().log_softmax(-1)  # (V,): the answer's first token
        logprobs = {c: first[p[0]].item() for c, p in zip(choices, pieces)}
        width = max(len(p) for p in pieces) - 1
        cache = out.cache
        cache.batch_repeat_interleave(len(pieces))  # (C, ...): one copy of the prompt's cache per choice
        rows = [p[:-1] + [end] * (width - len(p) + 1) for p in pieces]  # each choice but its last token, padded after
        steps = self.model(input_ids=torch.tensor(rows, device=self.device), cache=cache, use_cache=False).logits
        steps = steps.double().log_softmax(-1)  # (C, width, V): step k predicts token k + 1
        for c, p, row in zip(choices, pieces, steps):
            logprobs[c] += sum(row[k, token].item() for k, token in enumerate(p[1:]))
        return logprobs

    def _text(self, tokens: list[int]) -> str:
        return self.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    def chat(self, messages: list[dict], images: list, generation: Generation) -> Iterator["str | Finished"]:
        """A chat as given (system and earlier turns kept, no instruction added): the reply's text
        in pieces as it is generated, then Finished. `messages` use the chat-template shape,
        with {"type": "image"} parts standing for `images`, in order."""
        from transformers import TextIteratorStreamer

        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=[images] if images else None, return_tensors="pt")
        inputs = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        done: dict = {}

        def run():
            try:
                with self.lock, torch.inference_mode():
                    if generation.temperature > 0 and generation.seed is not None:
                        torch.manual_seed(generation.seed)
                    done["sequences"] = self.model.generate(
                        **inputs, streamer=streamer, max_new_tokens=generation.max_tokens, do_sample=generation.temperature > 0,
                        temperature=generation.temperature or None, top_p=None, top_k=None,
                    )
            except Exception as e:  # noqa: BLE001 - handed to the reader below
                done["error"] = e
                streamer.end()

        worker = threading.Thread(target=run, name="vqa-chat", daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if "error" in done:
            raise done["error"]
        prompt = inputs["input_ids"].shape[1]
        completion = done["sequences"].shape[1] - prompt
        yield Finished("length" if completion >= generation.max_tokens else "stop", prompt, completion)


@dataclass
class Finished:
    """How a chat reply ended: "stop" (the model ended it) or "length" (max_tokens), and the token counts."""

    reason: str
    prompt_tokens: int
    completion_tokens: int


class RememberedImages:
    """An image processor that remembers its last few results, by the identity of the images given.

    Every question's prompt goes through the processor with its image (the image's tokens in the
    text depend on it); the image's resizing, tiling and normalising is then done once per image,
    not once per question. A copy is returned each time: processors pop keys from it."""

    KEEP = 4

    def __init__(self, inner):
        self.inner = inner
        self._results: list[tuple[object, str, Any]] = []  # (images, settings, result); holding the images keeps their ids

    def __call__(self, images, **settings):
        key = repr(sorted(settings.items()))
        for held, held_key, result in self._results:
            if held_key == key and _same_images(held, images):
                return copy.copy(result)
        result = self.inner(images, **settings)
        self._results = [(images, key, result), *self._results[: self.KEEP - 1]]
        return copy.copy(result)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _same_images(a, b) -> bool:
    """The same image objects in the same nesting (lists of lists of PIL images)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_images(x, y) for x, y in zip(a, b))
    return a is b


def _truncated(inputs: dict, length: int) -> dict:
    """The processor's inputs cut to the first `length` tokens (image tensors kept whole)."""
    per_token = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
    return {k: (v[:, :length] if k in per_token else v) for k, v in inputs.items()}


def _extended(kwargs: dict, tokens: list[int]) -> dict:
    """Generation inputs with `tokens` appended to the prompt."""
    ids = kwargs["input_ids"]
    extra = torch.tensor([tokens], dtype=ids.dtype, device=ids.device)
    out = {**kwargs, "input_ids": torch.cat([ids, extra], 1), "attention_mask": torch.cat([kwargs["attention_mask"], torch.ones_like(extra)], 1)}
    if "mm_token_type_ids" in kwargs:
        out["mm_token_type_ids"] = torch.cat([kwargs["mm_token_type_ids"], torch.zeros_like(extra)], 1)
    return out


def _rope_deltas(model):
    inner = getattr(model, "model", None)
    return getattr(inner, "rope_deltas", None)


def _set_rope_deltas(model, value) -> None:
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "rope_deltas"):
        inner.rope_deltas = value


def load_processor(folder: Path):
    """AutoProcessor; or, where it needs torchvision for a video processor, the same processor
    class built from the image processor, tokenizer and chat template alone."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(folder, trust_remote_code=False)
    except ImportError as e:
        if "torchvision" not in str(e).lower():
            raise
    return _image_only_processor(folder)


def _image_only_processor(folder: Path):
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    name = _processor_class(folder)
    base = getattr(transformers, name, None)
    if base is None:
        raise ModelError(f"unknown processor class {name!r} in {folder}")

    class ImageOnly(base):
        def check_argument_for_proper_class(self, attribute, value):
            if attribute == "video_processor" and value is None:
                return None
            return super().check_argument_for_proper_class(attribute, value)

    image_processor = AutoImageProcessor.from_pretrained(folder, backend="pil", trust_remote_code=False)  # no torchvision
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return ImageOnly(image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=_chat_template(folder, tokenizer))


def _setting(folder: Path, files: tuple[str, ...], key: str):
    """The first value of `key` in the folder's JSON files, in that order; None when none has it."""
    for file in files:
        try:
            value = json.loads((folder / file).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return value
    return None


def _processor_class(folder: Path) -> str:
    name = _setting(folder, ("processor_config.json", "preprocessor_config.json"), "processor_class")
    if name:
        return str(name)
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    if model_type not in PROCESSOR_MAPPING_NAMES:
        raise ModelError(f"{folder} names no processor class, and {model_type!r} has none in transformers")
    return PROCESSOR_MAPPING_NAMES[model_type]


def _chat_template(folder: Path, tokenizer) -> str | None:
    """The chat template as a hub folder holds it: chat_template.jinja, chat_template.json, or the tokenizer's."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    return _setting(folder, ("chat_template.json", "processor_config.json"), "chat_template") or getattr(tokenizer, "chat_template", None)
