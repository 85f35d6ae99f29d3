"""The peak memory the book runner records for each chapter's kernel."""

from __future__ import annotations

import subprocess
import sys

from prreid_lib.memory import PeakChildMemory


def test_the_peak_of_a_child_process_is_recorded_and_the_parent_is_left_out():
    grow = "a = bytearray(400 * 2**20); import time; time.sleep(1.0)"
    with PeakChildMemory(interval=0.1) as memory:
        subprocess.run([sys.executable, "-c", grow], check=True)
    assert 0.39 < memory.peak_gib < 0.39 + 0.2  # 400 MiB and the interpreter, not the tests
    with PeakChildMemory(interval=0.1) as idle:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True)
    assert idle.peak_gib < 0.1
