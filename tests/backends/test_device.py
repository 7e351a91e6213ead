import pytest
import torch

from vqa_cli.backends.device import choose_device, choose_dtype
from vqa_cli.errors import DeviceError


def test_auto_picks_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device() == "cpu"


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device("auto") == "mps"


def test_env_var_and_flag_override(monkeypatch):
    monkeypatch.setenv("VQA_DEVICE", "cpu")
    assert choose_device() == "cpu"
    monkeypatch.setenv("VQA_DEVICE", "cuda")
    assert choose_device("cpu") == "cpu"  # the flag wins


def test_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="cuda"):
        choose_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        choose_device("tpu")


def test_dtype_suits_the_device(monkeypatch):
    assert choose_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert choose_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert choose_dtype("cuda:1") == torch.float16
    assert choose_dtype("cpu", "bfloat16") == torch.bfloat16
    with pytest.raises(DeviceError):
        choose_dtype("cpu", "int8")
