"""The progress convention: a bar only where someone watches, unless forced."""

from __future__ import annotations

import io
import sys

import pytest

from patchframe._progress import progress_bar, showing_progress


class Terminal(io.StringIO):
    """A stderr that says it is an interactive terminal."""

    def isatty(self) -> bool:
        return True


def run_bar(progress: bool | None) -> None:
    with progress_bar(1_000, description="workbook", unit="row", progress=progress) as bar:
        for _ in range(10):
            bar.update(100)


@pytest.mark.parametrize("progress", [None, False])
def test_nothing_is_written_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, progress: bool | None
) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    run_bar(progress)
    assert log.getvalue() == ""


def test_true_forces_the_bar_into_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    run_bar(True)
    assert "workbook" in log.getvalue() and "1000/1000" in log.getvalue()


def test_a_terminal_shows_the_bar_unless_false(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert showing_progress(None)
    run_bar(None)
    assert "workbook" in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    run_bar(False)
    assert quiet.getvalue() == ""


def test_a_running_kernel_shows_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    class Shell:
        kernel = object()

    class IPython:
        @staticmethod
        def get_ipython() -> Shell:
            return Shell()

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    monkeypatch.setitem(sys.modules, "IPython", IPython)
    assert showing_progress(None)
    monkeypatch.delitem(sys.modules, "ipykernel")  # IPython in a terminal: no kernel
    assert not showing_progress(None)
