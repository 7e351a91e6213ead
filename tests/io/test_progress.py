"""Progress bars show only on a terminal."""

from vqa_cli.io.progress import progress_bar


def test_progress_is_silent_when_stderr_is_not_a_terminal(capsys):
    with progress_bar() as progress:
        task = progress.add_task("answering", total=3, status="")
        progress.update(task, advance=3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
