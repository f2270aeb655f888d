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
    elif how == "daemon":  # a daemon thread (tqdm's monitor, say): a normal exit does not wait for it
        threading.Thread(target=lambda: __import__("time").sleep(600), daemon=True).start()
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


@pytest.mark.parametrize("how", ["ok", "daemon", "thread"])
def test_a_stage_that_returns_flushes_its_output_and_runs_its_exit_handlers(tmp_path, how):
    proc = run_stage(tmp_path, how)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == (["written", "thread done"] if how == "thread" else ["written"])
    assert "exit handler ran" in proc.stderr


def test_only_a_working_thread_keeps_a_stage_from_its_quick_exit():
    """:func:`chanest.utils.cli.finish` skips the modules' teardown unless a non-daemon thread
    runs (a normal exit waits for it); a daemon thread, such as tqdm's monitor, does not count."""
    probe = textwrap.dedent("""
        import threading
        from chanest.utils.cli import _working_threads
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        alone = _working_threads()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        print(alone, _working_threads())
        stop.set()
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


def test_an_input_error_is_one_line_and_a_defect_shows_its_traceback(tmp_path):
    proc = run_stage(tmp_path, "input")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "InputError: params: lora.r must be >= 1" in proc.stderr
    proc = run_stage(tmp_path, "bug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ZeroDivisionError: a defect" in proc.stderr


def test_a_stage_imports_with_the_garbage_collector_paused_and_computes_with_it():
    """``python -m stages.<name>`` (chanest/utils/imports.py): no collection from the package's
    import until ``cli.run`` starts the stage, which freezes the imported objects; importing a
    stage module any other way leaves the collector on."""
    from conftest import REPO

    as_stage = textwrap.dedent("""
        import gc, sys
        sys.argv[0] = "-m"  # what it is while `python -m stages.transfer` imports the package
        import stages.transfer
        paused = not gc.isenabled()
        from chanest.utils import cli
        cli.run(lambda: print(paused, gc.isenabled(), gc.get_freeze_count() > 0))
    """)
    proc = subprocess.run([sys.executable, "-c", as_stage], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True"]
    plain = "import gc, stages.transfer; print(gc.isenabled())"
    proc = subprocess.run([sys.executable, "-c", plain], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]


def test_collector_paused_restores_the_collector_as_it_was():
    import gc

    from chanest.utils.imports import collector_paused

    assert gc.isenabled()
    with pytest.raises(ImportError):
        with collector_paused():
            assert not gc.isenabled()
            import chanest_no_such_module  # noqa: F401
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
