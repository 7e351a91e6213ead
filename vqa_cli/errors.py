"""One exception type for everything a user can get wrong; the CLI prints it as one line."""

from __future__ import annotations

# Exit codes: 0 success; 1 (below); 2 a malformed command line (typer's own); 130 Ctrl-C.
EXIT_ERROR = 1  # bad input, a missing model, a failed row in a batch
EXIT_USAGE = 2  # a bad option value or combination, or a malformed setting in the environment


class VQAError(Exception):
    """An error the user can act on. `str(error)` is the whole message: one line, no traceback."""

    exit_code = EXIT_ERROR


class ImageError(VQAError):
    """The image is missing, unreadable, not an image, or too large."""


class ModelError(VQAError):
    """The model is unknown, not downloaded, unsafe to load, or cannot do what was asked."""


class DeviceError(VQAError):
    """The requested device or dtype is not available."""


class InputError(VQAError):
    """A question or an input file is malformed."""


class UsageError(VQAError):
    """A bad option value, a bad combination of options, or a malformed setting (exit 2)."""

    exit_code = EXIT_USAGE


def env_limit(name: str, default: int) -> int:
    """A positive integer limit from the environment; anything else there is a usage error."""
    import os

    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{name} must be a positive whole number; got {text!r}")
    return value
