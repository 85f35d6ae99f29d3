"""SynthVeh never deletes what it did not write, and an interrupted run loses nothing.

A second synth keeps the user's files inside the data-set folders; a run
stopped by Ctrl-C or SIGTERM (while rendering or swapping) or killed by SIGKILL
at any rename of the swap leaves the previous data set whole, manifest included,
or (after the commit) the new one; the next run succeeds and removes the
temporary folders of dead processes, never those of live ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prreid_lib.cli import main
from prreid_lib.config import get_profile
from prreid_lib.synthveh import generator as S
from prreid_lib.synthveh import swap
from tests.test_synthetic import TINY

REPO = Path(__file__).resolve().parents[1]
USER_FILES = {
    "notes.txt": "at the root",
    "VeRi-776/my_runs/run1/log.txt": "a run folder inside the data set",
    "VeRi-776/image_train/extra.jpg": "an image of the user among prreid's",
    "parts/README.md": "in parts",
    "parts/labels/train/notes.txt": "deep inside a label folder",
}


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file by the SHA-1 of its bytes, a folder as '<dir>'."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def add_user_files(root: Path) -> None:
    for rel, text in USER_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def user_files_intact(root: Path) -> bool:
    return all((root / rel).read_text() == text for rel, text in USER_FILES.items())


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``old``: TINY seed 0 with the user's files; ``new``: that after a synth with seed 1.
    Both read only: tests copy them."""
    base = tmp_path_factory.mktemp("states")
    S.generate_synthveh(TINY, base / "old", seed=0, workers=1)
    add_user_files(base / "old")
    shutil.copytree(base / "old", base / "new", symlinks=True)
    S.generate_synthveh(TINY, base / "new", seed=1, workers=1)
    return {"old": base / "old", "new": base / "new"}


def work_copy(states: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the ``old`` state in ``tmp_path/data`` (file contents hold no absolute path)."""
    out = tmp_path / "data"
    shutil.copytree(states["old"], out, symlinks=True)
    return out


def same_as(out: Path, ref: Path) -> bool:
    return snapshot(out) == snapshot(ref)


# ----------------------------------------------------------------------------- keep the user's


def test_second_synth_keeps_the_users_files(states, tmp_path: Path, monkeypatch) -> None:
    out = work_copy(states, tmp_path)
    monkeypatch.chdir(out.parent)
    S.generate_synthveh(TINY, Path("data"), seed=1, workers=1)  # a relative path
    assert user_files_intact(out)
    fresh = S.generate_synthveh(TINY, tmp_path / "fresh", seed=1, workers=1)
    mine = {k: v for k, v in snapshot(out).items() if k in snapshot(fresh)}
    assert mine == snapshot(fresh)  # prreid's files are exactly the new data set's
    extra = set(snapshot(out)) - set(snapshot(fresh))
    assert extra == {"notes.txt", "VeRi-776/my_runs", "VeRi-776/my_runs/run1", *USER_FILES}
    assert not [p for p in out.iterdir() if p.name.startswith(".synthveh")]


def test_manifest_lists_what_prreid_wrote(states) -> None:
    man = json.loads((states["old"] / "synthveh.json").read_text())
    listed = {f"{sub}/{f}" for sub, files in man["files"].items() for f in files}
    assert "VeRi-776/gt_index.txt" in listed and "parts/data.yaml" in listed
    assert not listed & set(USER_FILES)


def test_manifest_without_file_list_keeps_top_level_user_entries(states, tmp_path) -> None:
    out = work_copy(states, tmp_path)
    man = json.loads((out / "synthveh.json").read_text())
    del man["files"]  # as written before the manifest listed files
    (out / "synthveh.json").write_text(json.dumps(man))
    S.generate_synthveh(TINY, out, seed=1, workers=1)
    assert (out / "VeRi-776/my_runs/run1/log.txt").read_text() == USER_FILES[
        "VeRi-776/my_runs/run1/log.txt"
    ]
    assert (out / "parts/README.md").read_text() == USER_FILES["parts/README.md"]
    assert "files" in json.loads((out / "synthveh.json").read_text())


def test_a_user_file_where_the_new_set_writes_is_refused(states, tmp_path) -> None:
    out = work_copy(states, tmp_path)
    clash = out / "pretrain" / "image_list.txt"  # TINY has no pretrain set; this one has
    clash.parent.mkdir()
    clash.write_text("mine")
    before = snapshot(out)
    with pytest.raises(ValueError) as exc:
        S.generate_synthveh(dataclasses.replace(TINY, pretrain_ids=2), out, seed=1, workers=1)
    message = str(exc.value)
    assert "pretrain/image_list.txt" in message and "nothing was changed" in message
    assert snapshot(out) == before


def test_cli_refuses_a_link_in_place_of_a_data_set_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("x")
    out = tmp_path / "data"
    out.mkdir()
    (out / "VeRi-776").symlink_to(tmp_path / "elsewhere")
    assert main(["synth", "--profile", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prreid synth: error:") and "VeRi-776" in err and "\n" not in err
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "x"


def test_ensure_keeps_user_files_and_removes_dead_siblings(tmp_path: Path) -> None:
    profile = dataclasses.replace(get_profile("smoke"), name="tiny", synth=TINY)
    root = S.ensure_synthveh(profile, root=tmp_path / "tiny", seed=0, workers=1)
    add_user_files(root)
    dead = _dead_pid()
    sibling = tmp_path / f".tiny.tmp-{dead}"  # left beside the root by an older version
    (sibling / "VeRi-776").mkdir(parents=True)
    changed = dataclasses.replace(profile, synth=dataclasses.replace(TINY, cue_strength=1.5))
    S.ensure_synthveh(changed, root=root, seed=0, workers=1)
    assert user_files_intact(root) and not sibling.exists()
    assert json.loads((root / "synthveh.json").read_text())["config"]["cue_strength"] == 1.5


# ----------------------------------------------------------------------------- temporary folders


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def _temp(out: Path, name: str, pid: int | None, host: str | None = None) -> Path:
    tmp = out / name
    (tmp / "new" / "VeRi-776").mkdir(parents=True)
    (tmp / "new" / "VeRi-776" / "x.jpg").write_bytes(b"half")
    if pid is not None:
        owner = {"pid": pid, "host": host or swap.socket.gethostname()}
        (tmp / swap.OWNER).write_text(json.dumps(owner))
    return tmp


def test_next_run_removes_dead_temp_folders_and_keeps_live_ones(states, tmp_path) -> None:
    out = work_copy(states, tmp_path)
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = [
            _temp(out, f".synthveh.tmp-{dead}-0badc0de", dead),
            _temp(out, f".synthveh.tmp-{dead}", None),  # older name, no owner file
            _temp(out, f".synthveh.tmp-{os.getpid()}-0badf00d", os.getpid()),  # an earlier call
        ]
        kept = [
            _temp(out, f".synthveh.tmp-{live.pid}-0badc0de", live.pid),
            _temp(out, f".synthveh.tmp-{dead}-00c0ffee", dead, host="another-machine"),
        ]
        S.generate_synthveh(TINY, out, seed=1, workers=1)
        assert not any(p.exists() for p in gone)
        assert all((p / "new" / "VeRi-776" / "x.jpg").read_bytes() == b"half" for p in kept)
        assert user_files_intact(out)
    finally:
        live.kill()
        live.wait()


# ----------------------------------------------------------------------------- SIGKILL


def _calls_of_a_swap(states, tmp_path: Path) -> tuple[list[str], int]:
    """The renames of a whole synth over the old state, and the index of the commit."""
    out = work_copy(states, tmp_path / "count")
    calls: list[str] = []
    real_rename, real_replace = os.rename, os.replace

    def rename(src, dst, *a, **k):
        calls.append(f"rename {src} -> {dst}")
        return real_rename(src, dst, *a, **k)

    def replace(src, dst, *a, **k):
        calls.append(f"replace {src} -> {dst}")
        return real_replace(src, dst, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "rename", rename)
        mp.setattr(os, "replace", replace)
        S.generate_synthveh(TINY, out, seed=1, workers=1)
    assert same_as(out, states["new"])
    commit = [i for i, c in enumerate(calls) if c.endswith(f"-> {out / 'synthveh.json'}")]
    assert len(commit) == 1 and commit[0] > 3, calls
    return calls, commit[0]


def _killed_child(run: Callable[[], None]) -> None:
    """Run ``run`` in a forked process that must die of SIGKILL."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            run()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _kill_after_call(n: int) -> Callable[[], None]:
    """A child body: a synth with seed 1 that SIGKILLs itself right after rename ``n``."""

    def run() -> None:
        count = [0]

        def wrap(real):
            def call(*a, **k):
                result = real(*a, **k)
                count[0] += 1
                if count[0] == n + 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            return call

        os.rename, os.replace = wrap(os.rename), wrap(os.replace)
        S.generate_synthveh(TINY, Path("data"), seed=1, workers=1)

    return run


def _check_kill_at(states, tmp_path: Path, n: int, commit: int, monkeypatch) -> None:
    out = work_copy(states, tmp_path / f"k{n}")
    monkeypatch.chdir(out.parent)
    _killed_child(_kill_after_call(n))
    manifest = json.loads((out / "synthveh.json").read_text())  # never missing
    assert manifest["seed"] == (1 if n >= commit else 0)
    swap.recover(out)
    assert same_as(out, states["new" if n >= commit else "old"]), f"killed after call {n}"
    S.generate_synthveh(TINY, out, seed=1, workers=1)  # the next run succeeds
    assert same_as(out, states["new"])


def test_sigkill_during_the_swap_is_recovered(states, tmp_path: Path, monkeypatch) -> None:
    calls, commit = _calls_of_a_swap(states, tmp_path)
    for n in sorted({2, (2 + commit) // 2, commit - 1, commit}):
        _check_kill_at(states, tmp_path, n, commit, monkeypatch)


@pytest.mark.slow
def test_sigkill_after_every_rename_is_recovered(states, tmp_path: Path, monkeypatch) -> None:
    calls, commit = _calls_of_a_swap(states, tmp_path)
    for n in range(len(calls)):
        _check_kill_at(states, tmp_path, n, commit, monkeypatch)


def test_sigkill_while_rendering_keeps_the_old_set(states, tmp_path: Path, monkeypatch) -> None:
    out = work_copy(states, tmp_path)
    monkeypatch.chdir(tmp_path)

    def run() -> None:
        real = S._render_job
        count = [0]

        def job(j):
            count[0] += 1
            if count[0] == 10:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(j)

        S._render_job = job
        S.generate_synthveh(TINY, Path("data"), seed=1, workers=1)

    _killed_child(run)
    assert [p.name for p in out.glob(".synthveh.tmp-*")]  # left by the dead process
    old = snapshot(states["old"])
    assert {k: v for k, v in snapshot(out).items() if ".synthveh.tmp-" not in k} == old
    S.generate_synthveh(TINY, out, seed=1, workers=1)
    assert same_as(out, states["new"])  # its temporary folder is gone too


# ----------------------------------------------------------------------------- Ctrl-C and SIGTERM

CHILD = """
import os, sys, time
from pathlib import Path
from prreid_lib.synthveh import generator as S
from tests.test_synthetic import TINY

where, n = sys.argv[2], int(sys.argv[3])
count = [0]

def pause():
    count[0] += 1
    if count[0] == n:
        print("paused", flush=True)
        time.sleep(60)

if where == "render":
    real_job = S._render_job
    S._render_job = lambda job: (pause(), real_job(job))[1]
else:
    real_rename = os.rename
    os.rename = lambda *a, **k: (real_rename(*a, **k), pause())[0]
S.generate_synthveh(TINY, Path(sys.argv[1]), seed=1, workers=1)
"""


def _stop_child(out: Path, where: str, n: int, sig: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), where, str(n)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "paused", proc.stderr.read()
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode


def _check_stop(states, tmp_path: Path, where: str, n: int, sig: int) -> None:
    out = work_copy(states, tmp_path)
    code = _stop_child(out, where, n, sig)
    assert code != 0
    assert same_as(out, states["old"])  # whole, with its manifest, no temporary folder left
    S.generate_synthveh(TINY, out, seed=1, workers=1)
    assert same_as(out, states["new"])


def test_ctrl_c_during_the_swap_keeps_the_old_set(states, tmp_path: Path) -> None:
    _check_stop(states, tmp_path, "swap", 4, signal.SIGINT)


def test_sigterm_while_rendering_keeps_the_old_set(states, tmp_path: Path) -> None:
    _check_stop(states, tmp_path, "render", 5, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("where", "n"), [("render", 1), ("swap", 1), ("swap", 6), ("swap", 9)])
def test_stopping_at_any_stage_keeps_the_old_set(states, tmp_path: Path, sig, where, n) -> None:
    _check_stop(states, tmp_path, where, n, sig)


def test_cli_synth_stopped_by_ctrl_c_keeps_the_old_set(states, tmp_path: Path) -> None:
    out = work_copy(states, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prreid_lib.cli", "synth", "--profile", "smoke", "--out", "data"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".synthveh.tmp-*/new/VeRi-776/image_train/*.jpg")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0
    assert same_as(out, states["old"])


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0, 3.0])
def test_sigkill_at_a_random_moment_is_recovered(states, tmp_path: Path, delay: float) -> None:
    out = work_copy(states, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), "render", "0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    time.sleep(delay)
    proc.kill()
    proc.wait()
    assert json.loads((out / "synthveh.json").read_text())["seed"] in (0, 1)
    swap.recover(out)
    assert same_as(out, states["old"]) or same_as(out, states["new"])
    S.generate_synthveh(TINY, out, seed=1, workers=1)
    assert same_as(out, states["new"])


@pytest.mark.slow
def test_two_concurrent_synths_leave_one_whole_set(states, tmp_path: Path) -> None:
    out = work_copy(states, tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(out), "render", "0"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert same_as(out, states["new"])
