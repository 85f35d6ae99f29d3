"""The peak memory the book runner records for each chapter's kernel."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from prreid_lib.memory import PeakChildMemory, resident_bytes


def test_the_peak_of_a_child_process_is_recorded_and_the_parent_is_left_out():
    grow = "a = bytearray(400 * 2**20); import time; time.sleep(1.0)"
    with PeakChildMemory(interval=0.1) as memory:
        subprocess.run([sys.executable, "-c", grow], check=True)
    assert 0.39 < memory.peak_gib < 0.39 + 0.2  # 400 MiB and the interpreter, not the tests
    with PeakChildMemory(interval=0.1) as idle:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True)
    assert idle.peak_gib < 0.1


def test_a_forked_child_is_not_counted_twice():
    # a child that holds 400 MiB and forks a sleeper: the two share those pages
    code = (
        "import os, time, numpy as np\n"
        "a = np.ones(50 * 2**20)\n"  # 400 MiB, touched
        "pid = os.fork()\n"
        "time.sleep(4)\n"
        "os._exit(0) if pid == 0 else os.waitpid(pid, 0)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):  # wait for the fork
            time.sleep(0.05)
            tree = psutil.Process().children(recursive=True)
            if len(tree) == 2:
                break
        assert len(tree) == 2
        rss_sum = sum(p.memory_info().rss for p in tree) / 2**20
        counted = resident_bytes(tree) / 2**20
    finally:
        proc.wait()
    assert rss_sum > 750  # each process's resident set holds the shared 400 MiB
    assert 380 < counted < 600  # counted once
