"""The stage entry point (:func:`chanest.utils.cli.run`): how a stage ends, in a real process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

STAGE = """
import atexit, sys, threading
from chanest.errors import InputError
from chanest.utils import cli

def main():
    atexit.register(lambda: print("exit handler ran", file=sys.stderr))
    print("written")  # stdout is a pipe here: block-buffered until the end
    how = sys.argv[1]
    if how == "thread":  # a thread that is still working when main returns
        threading.Thread(target=lambda: (__import__("time").sleep(0.3), print("thread done"))).start()
    elif how == "input":
        raise InputError("params: lora.r must be >= 1")
    elif how == "bug":
        raise ZeroDivisionError("a defect")

cli.run(main)
"""


def run_stage(tmp_path, how: str) -> subprocess.CompletedProcess:
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent(STAGE))
    return subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["ok", "thread"])
def test_a_stage_that_returns_flushes_its_output_and_runs_its_exit_handlers(tmp_path, how):
    proc = run_stage(tmp_path, how)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == (["written"] if how == "ok" else ["written", "thread done"])
    assert "exit handler ran" in proc.stderr


def test_an_input_error_is_one_line_and_a_defect_shows_its_traceback(tmp_path):
    proc = run_stage(tmp_path, "input")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "InputError: params: lora.r must be >= 1" in proc.stderr
    proc = run_stage(tmp_path, "bug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ZeroDivisionError: a defect" in proc.stderr
