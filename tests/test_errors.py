"""Every user error is a VQAError with exit code 1, and the CLI prints it as one line."""

import pytest
import typer

from vqa_cli.cli import user_errors
from vqa_cli.errors import DeviceError, ImageError, InputError, ModelError, VQAError


@pytest.mark.parametrize("kind", [ImageError, ModelError, DeviceError, InputError])
def test_each_kind_is_one_line_and_exit_1(kind, capsys):
    assert issubclass(kind, VQAError) and kind.exit_code == 1
    with pytest.raises(typer.Exit) as stopped, user_errors():
        raise kind("something is wrong")
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err == "vqa: error: something is wrong\n"


def test_ctrl_c_exits_130(capsys):
    with pytest.raises(typer.Exit) as stopped, user_errors():
        raise KeyboardInterrupt
    assert stopped.value.exit_code == 130 and capsys.readouterr().err == "vqa: interrupted\n"
