"""prreid_lib.heap: when large training steps keep freed memory, and how it is set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from prreid_lib import heap
from prreid_lib.chapters import largest_step


def test_threshold_follows_the_largest_activation():
    # quick: 32 images at 64 px -> layer1 output 32 x 256 x 16 x 16 x 4 B = 8 MiB, mmapped never
    assert heap.largest_activation_bytes(32, 64) == 32 * 256 * 16 * 16 * 4
    assert not heap.heap_reuse_needed(32, 64)
    # the paper's step: 64 images at 256 px -> 256 MiB per layer1 output
    assert heap.heap_reuse_needed(64, 256)
    # the boundary at 64 px: 128 images are exactly glibc's largest mmap threshold, 129 above
    assert not heap.heap_reuse_needed(128, 64)
    assert heap.heap_reuse_needed(129, 64)


def test_profiles_that_need_it():
    assert not heap.heap_reuse_needed(*largest_step("quick"))
    assert not heap.heap_reuse_needed(*largest_step("smoke"))
    assert heap.heap_reuse_needed(*largest_step("paper-check"))
    assert largest_step("paper") == (64, 512)  # chapter 7 trains at 512 px


def test_kernel_environment_adds_tunables_and_keeps_the_users():
    env = heap.kernel_environment({"PATH": "/bin"}, 64, 256)
    assert env["GLIBC_TUNABLES"] == heap.HEAP_TUNABLES and env["PATH"] == "/bin"
    other = heap.kernel_environment({"GLIBC_TUNABLES": "glibc.cpu.x86_ibt=off"}, 64, 256)
    assert other["GLIBC_TUNABLES"] == f"glibc.cpu.x86_ibt=off:{heap.HEAP_TUNABLES}"
    users = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert heap.kernel_environment(users, 64, 256) == users
    assert heap.kernel_environment({"MALLOC_ARENA_MAX": "2"}, 64, 256) == {"MALLOC_ARENA_MAX": "2"}
    assert "GLIBC_TUNABLES" not in heap.kernel_environment({}, 32, 64)


def test_children_get_the_setting_and_it_is_restored(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    with heap.heap_reuse_for_children(64, 256):
        seen = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['GLIBC_TUNABLES'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    assert seen == heap.HEAP_TUNABLES
    assert "GLIBC_TUNABLES" not in os.environ


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_in_a_fresh_process():
    code = (
        "from prreid_lib import heap\n"
        "print(heap.keep_freed_memory(32, 64), heap.keep_freed_memory(64, 256), "
        "heap.keep_freed_memory(32, 64))"
    )
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == ["False", "True", "True"]  # small steps leave malloc alone; once set, it stays
