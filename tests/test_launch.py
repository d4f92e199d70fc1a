"""The command's process set-up: numpy's arrays in small pages unless the user says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poiflow._launch import HUGE_PAGES_VARIABLE

# Prints whether numpy asks for huge pages after the set-up (the setter returns the value
# it replaces), and what a process started from this one is told.
_PROBE = """
import subprocess, sys
from poiflow._launch import small_pages
small_pages()
import numpy
print(numpy._core.multiarray._set_madvise_hugepage(True))
child = "import numpy; print(numpy._core.multiarray._set_madvise_hugepage(True))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


def _probe(environment: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=environment, check=True
    )
    return done.stdout.split()


@pytest.mark.skipif(sys.platform != "linux", reason="numpy asks for huge pages on Linux only")
def test_numpy_keeps_to_small_pages_here_and_in_the_processes_it_starts() -> None:
    environment = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_VARIABLE}
    assert _probe(environment) == ["False", "False"]


@pytest.mark.skipif(sys.platform != "linux", reason="numpy asks for huge pages on Linux only")
def test_the_users_own_setting_wins() -> None:
    environment = {**os.environ, HUGE_PAGES_VARIABLE: "1"}
    assert _probe(environment) == ["True", "True"]
