"""Choose where the model runs (CUDA, then MPS, then CPU) and in which dtype."""

from __future__ import annotations

import os

from ..errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def choose_device(requested: str | None = None) -> str:
    """`--device` wins, then $VQA_DEVICE, then the best available."""
    import torch

    choice = (requested or os.environ.get("VQA_DEVICE") or "auto").lower()
    kind = choice.split(":")[0]
    if kind not in DEVICES:
        raise DeviceError(f"unknown device {choice!r}; choose one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if kind == "cuda" and not cuda:
        raise DeviceError("device 'cuda' is not available: no CUDA GPU found (use --device cpu or auto)")
    if kind == "mps" and not mps:
        raise DeviceError("device 'mps' is not available: no Apple GPU found (use --device cpu or auto)")
    return choice


def choose_dtype(device: str, requested: str | None = None):
    """fp32 on CPU; bf16 on GPUs that support it, else fp16; `--dtype` overrides."""
    import torch

    choice = (requested or "auto").lower()
    if choice not in DTYPES:
        raise DeviceError(f"unknown dtype {choice!r}; choose one of {', '.join(DTYPES)}")
    if choice != "auto":
        return getattr(torch, choice)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32
