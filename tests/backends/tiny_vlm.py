"""Tiny random generative vision-language checkpoints, laid out like real Hugging Face hub folders.

`build_idefics3` writes a SmolVLM-style (Idefics3) checkpoint and `build_qwen2_vl` a Qwen2-VL one: config, safetensors
weights, a byte-level BPE tokenizer trained on the spot, the image processor and a chat template. Each is built
offline from fixed seeds in well under a second once transformers is imported, for tests that need a real
architecture but no download.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "what color is the circle? what color is the square? what shape is on the left?",
    "how many objects are there? how many red circles are in the photo?",
    "is there a small blue triangle at the top? is the cat on the right?",
    "yes no red blue green one two three four circle square triangle cat dog",
    "User: Assistant: user assistant system You are a helpful assistant.",
    "the answer is a large green square at the bottom of the image.",
]

SMOLVLM_TEMPLATE = (
    "<|im_start|>"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}"
    "{% else %}"
    "{{ ':' if message['content'][0]['type'] == 'image' else ': ' }}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

IDEFICS3_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
]
QWEN2_VL_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
    "<|video_pad|>",
]


def train_tokenizer(special_tokens: list[str], vocab_size: int = 400, **named_tokens: str):
    """A byte-level BPE trained on `CORPUS`, its special tokens first, wrapped as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer)
    named = set(named_tokens.values())
    extra = [t for t in special_tokens if t not in named]
    return PreTrainedTokenizerFast(tokenizer_object=bpe, extra_special_tokens=extra, **named_tokens)


def save_tokenizer(tokenizer, out: Path) -> None:
    """Tokenizer files as on the hub: tokenizer.json and its config, plus the BPE's vocab.json and merges.txt."""
    tokenizer.save_pretrained(out)
    tokenizer.backend_tokenizer.model.save(str(out))


def save_model(model, out: Path, bos: int, eos: int | list[int], pad: int) -> None:
    """Weights as one safetensors file, with the generation config that names the end-of-turn token."""
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    model.save_pretrained(out, safe_serialization=True)


def idefics3_config(tokenizer, image_size: int, patch_size: int, scale_factor: int, text: dict | None = None, vision: dict | None = None):
    """A 2-layer Llama text model over a 1-layer SigLIP-style vision tower, its token ids taken from `tokenizer`;
    `text` and `vision` override the sizes (bench/vlm_prefix.py builds SmolVLM-256M's shape with them)."""
    from transformers import Idefics3Config

    return Idefics3Config(
        text_config={
            "model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512,
            "initializer_range": 0.5, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, **(text or {}),
        },
        vision_config={
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": image_size, "patch_size": patch_size, "initializer_range": 0.5, **(vision or {}),
        },
        scale_factor=scale_factor, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
    )


def idefics3_parts(image_size: int = 32, patch_size: int = 8, scale_factor: int = 2, text: dict | None = None,
                   vision: dict | None = None, splitting: bool = True):
    """(model, processor) of a random Idefics3 checkpoint: images split into at most 2x2 tiles plus a global view
    (one view when not `splitting`), each view giving (image_size / patch_size)^2 / scale_factor^2 image tokens."""
    import torch
    from transformers import Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil, Idefics3Processor

    tokenizer = train_tokenizer(
        IDEFICS3_SPECIALS, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(idefics3_config(tokenizer, image_size, patch_size, scale_factor, text, vision))
    model.generation_config.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * image_size}, max_image_size={"longest_edge": image_size}, do_image_splitting=splitting,
    )
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=image_seq_len, chat_template=SMOLVLM_TEMPLATE)
    return model, processor


def build_idefics3(out: Path) -> Path:
    """A random SmolVLM (v1, `idefics3`) checkpoint: images split into at most 2x2 tiles of 32 px plus a global
    view, each tile giving 4 image tokens (8 px patches, pixel-shuffled by 2)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, processor = idefics3_parts()
    tokenizer = processor.tokenizer
    save_model(model, out, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    processor.save_pretrained(out)  # processor_config.json, chat_template.jinja and the tokenizer files
    tokenizer.backend_tokenizer.model.save(str(out))  # vocab.json and merges.txt
    return out


def qwen2_vl_config(tokenizer, patch_size: int, merge_size: int):
    """A 2-layer text model over a 1-layer vision tower, its token ids taken from `tokenizer`."""
    from transformers import Qwen2VLConfig

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.5,
            # mrope_section splits the rotary half of the 16-wide heads between time, height and width.
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=ids("<|endoftext|>"), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=patch_size,
            spatial_merge_size=merge_size, temporal_patch_size=2, initializer_range=0.5,
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )


def build_qwen2_vl(out: Path) -> Path:
    """A random Qwen2-VL checkpoint: 8 px patches merged 2x2, images scaled to at most 32x32 px, so 4 image tokens.

    Its processor needs a video processor, which needs torchvision, so the files are written piece by piece as the
    hub has them: the (PIL) image processor's preprocessor_config.json naming the processor class, the tokenizer
    and chat_template.jinja."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(
        QWEN2_VL_SPECIALS, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>",
    )
    patch_size, merge_size = 8, 2
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(qwen2_vl_config(tokenizer, patch_size, merge_size))
    pad = tokenizer.pad_token_id
    save_model(model, out, bos=pad, eos=[tokenizer.eos_token_id, pad], pad=pad)
    side = patch_size * merge_size
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=side * side, max_pixels=4 * side * side, patch_size=patch_size, merge_size=merge_size,
        temporal_patch_size=2,
    )
    preprocessor = {**image_processor.to_dict(), "processor_class": "Qwen2VLProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2, sort_keys=True) + "\n")
    save_tokenizer(tokenizer, out)
    (out / "chat_template.jinja").write_text(QWEN2_VL_TEMPLATE)
    return out
