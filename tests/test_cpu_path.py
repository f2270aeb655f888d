"""One CPU instruction-set path (chanest.utils.cpu): the same training gives the same bytes
whatever the environment says, and the bytes of every machine are the committed ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chanest.utils import cpu
from conftest import REPO

PROBE = Path(__file__).with_name("cpu_path_probe.py")

#: SHA-256 of the probe's trained weights on the pinned (AVX2) path, torch 2.13.0. A machine that
#: gives another hash takes another CPU path: its `dvc repro` will not reproduce the committed
#: reports (docs/reproducibility.md says what to check).
GOLDEN = "ca85ebd871a4e5f7eac44a5c98434e9321e1e7d72e1f8b6fac67facf346269a9"

OUTER = (*cpu.PINNED, cpu.SWITCH)  # what the outer environment may say about the CPU path


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in OUTER}
    out = subprocess.run([sys.executable, str(PROBE)], env={**clean, **env}, cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_two_outer_settings_give_the_golden_bytes():
    wide = probe(ATEN_CPU_CAPABILITY="avx512")
    narrow = probe(ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="COMPATIBLE")
    assert wide == narrow, "the pinned path depends on the outer environment"
    assert wide == GOLDEN, ("this machine's CPU path gives other bytes than the committed ones: "
                            f"{wide} (docs/reproducibility.md)")


@pytest.mark.slow
@pytest.mark.skipif(not avx512(), reason="the native paths differ only on an AVX-512 machine")
def test_without_the_pin_an_avx512_machine_gives_other_bytes():
    """What the pin prevents: on this machine the libraries' own choice is not the AVX2 path."""
    native = probe(CHANEST_CPU_PATH="native")
    assert native != probe(CHANEST_CPU_PATH="native", ATEN_CPU_CAPABILITY="avx2")
    assert native != GOLDEN


def test_the_switch_is_checked(monkeypatch):
    monkeypatch.setenv("CHANEST_CPU_PATH", "avx1024")
    with pytest.raises(ValueError, match="CHANEST_CPU_PATH='avx1024'"):
        cpu.pin()
    monkeypatch.setenv("CHANEST_CPU_PATH", "native")
    assert cpu.pin() == {}
    monkeypatch.delenv("CHANEST_CPU_PATH")
    assert cpu.pin()["ATEN_CPU_CAPABILITY"] == "avx2"
