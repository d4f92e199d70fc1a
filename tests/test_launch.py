"""The command's process set-up: numpy's arrays and Arrow's memory in small pages unless
the user says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from poiflow._launch import ARROW_HUGE_PAGES_VARIABLE, HUGE_PAGES_VARIABLE

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="numpy and mimalloc ask for huge pages on Linux only"
)

# Prints whether numpy asks for huge pages after the set-up (the setter returns the value
# it replaces), and what a process started from this one is told.
_NUMPY_PROBE = """
import subprocess, sys
from poiflow._launch import small_pages
small_pages()
import numpy
print(numpy._core.multiarray._set_madvise_hugepage(True))
child = "import numpy; print(numpy._core.multiarray._set_madvise_hugepage(True))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""

# Prints how many of the process's mappings were advised to use huge pages once Arrow has
# made a 64 MiB array (from its default pool), and what a process started from it is told.
_ARROW_PROBE = """
import os, subprocess, sys
from poiflow._launch import small_pages
small_pages()
import numpy, pyarrow, pyarrow.compute
assert pyarrow.default_memory_pool().backend_name == "mimalloc"
made = pyarrow.compute.add(pyarrow.array(numpy.arange(1 << 23)), 1)
flags = [line for line in open("/proc/self/smaps") if line.startswith("VmFlags:")]
print(sum(" hg" in line for line in flags))
child = "import os; print(os.environ.get('MIMALLOC_ALLOW_THP'))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


def _probe(code: str, environment: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    return done.stdout.split()


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def _advised_huge_pages() -> bool:
    """Whether this kernel gives huge pages to memory advised to use them (THP "madvise")."""
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return mode.exists() and "[madvise]" in mode.read_text()


def test_numpy_keeps_to_small_pages_here_and_in_the_processes_it_starts() -> None:
    assert _probe(_NUMPY_PROBE, _without(HUGE_PAGES_VARIABLE)) == ["False", "False"]


def test_the_users_own_numpy_setting_wins() -> None:
    environment = {**os.environ, HUGE_PAGES_VARIABLE: "1"}
    assert _probe(_NUMPY_PROBE, environment) == ["True", "True"]


def test_arrow_keeps_to_small_pages_here_and_in_the_processes_it_starts() -> None:
    advised, child = _probe(_ARROW_PROBE, _without(HUGE_PAGES_VARIABLE, ARROW_HUGE_PAGES_VARIABLE))
    assert (advised, child) == ("0", "0")


def test_the_users_own_arrow_setting_wins() -> None:
    environment = {**_without(HUGE_PAGES_VARIABLE), ARROW_HUGE_PAGES_VARIABLE: "1"}
    advised, child = _probe(_ARROW_PROBE, environment)
    assert child == "1"
    if _advised_huge_pages():  # mimalloc advises its arenas: the switch is what stops it
        assert int(advised) > 0
