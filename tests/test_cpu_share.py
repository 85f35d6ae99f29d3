"""The OpenMP wait setting follows the load other jobs put on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prreid_lib import cpu_share

STAT = "cpu  100 5 50 800 10 3 2 40 0 0\ncpu0 50 2 25 400 5 1 1 20 0 0\n"


def test_cpu_times_counts_user_nice_system_irq_softirq_steal_as_busy():
    assert cpu_share.cpu_times(STAT) == (100 + 5 + 50 + 3 + 2 + 40, 1010)


def test_cpu_times_refuses_a_file_without_the_cpu_line():
    with pytest.raises(ValueError, match="cpu"):
        cpu_share.cpu_times("intr 1 2 3\n")


def test_busy_cores_subtract_this_process_and_scale_by_cores():
    before, after = (100, 1000), (250, 1200)  # 150 of 200 ticks busy on 2 cores
    assert cpu_share.busy_cores_between(before, after, 2) == pytest.approx(1.5)
    assert cpu_share.busy_cores_between(before, after, 2, own_ticks=50) == pytest.approx(1.0)
    assert cpu_share.busy_cores_between(before, before, 2) == 0.0


def test_wait_policy_spins_only_on_idle_cores():
    assert cpu_share.wait_policy(0.1) == "ACTIVE"
    assert cpu_share.wait_policy(0.5) == "PASSIVE"
    assert cpu_share.wait_policy(1.8) == "PASSIVE"
    assert cpu_share.wait_policy(None) == "PASSIVE"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
def test_a_busy_process_beside_it_is_measured():
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:  # the best of a few readings: another job of the machine may pause this one's
        measured = [cpu_share.other_jobs_cores(0.5) for _ in range(4)]
        assert max(measured) >= 0.7, measured
        assert cpu_share.wait_policy(max(measured)) == "PASSIVE"
    finally:
        other.kill()
        other.wait()


def test_importing_the_library_sets_a_policy_only_when_unset():
    code = "import prreid_lib, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if "WAIT_POLICY" not in k}
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert chosen in ("ACTIVE", "PASSIVE")
    env["OMP_WAIT_POLICY"] = "passive"
    kept = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert kept == "passive"


def test_a_child_of_a_process_that_chose_measures_again():
    code = "import prreid_lib, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if "WAIT_POLICY" not in k}
    env |= {"OMP_WAIT_POLICY": "inherited", "PRREID_AUTO_WAIT_POLICY": "1"}
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert chosen in ("ACTIVE", "PASSIVE")
