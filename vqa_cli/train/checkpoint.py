"""Checkpoints that make an interrupted run resume exactly: weights, optimizer, schedule and state.

Everything is safetensors or JSON; nothing is pickled. A checkpoint is written to a sibling
folder and swapped in, so a kill mid-write leaves the previous one intact.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

from torch import nn


def save(path: Path, modules: nn.Module, optimizer, schedule, state: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in modules.state_dict().items()}, tmp / "model.safetensors")
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


def exists(path: Path) -> bool:
    return (path / "state.json").is_file()


def load(path: Path, modules: nn.Module, optimizer, schedule) -> dict:
    """Restore weights, optimizer and schedule in place; return the saved state (step, history, ...)."""
    from safetensors.torch import load_file

    modules.load_state_dict(load_file(path / "model.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    opt_state: dict = defaultdict(dict)
    for name, value in load_file(path / "optimizer.safetensors").items():
        param, key = name.split(".", 1)
        opt_state[int(param)][key] = value.reshape(()) if key == "step" else value
    optimizer.load_state_dict({"state": dict(opt_state), "param_groups": meta.pop("param_groups")})
    schedule.load_state_dict(meta.pop("schedule"))
    return meta
