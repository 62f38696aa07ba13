"""Faults end cleanly: a full disk is one line that names the folder and the space needed,
leaves no temporary file and no worker process, and loses nothing that existed; a build
killed outright leaves no worker process behind.

For an index, a full disk is a real tmpfs where this process may mount one (root, mount
permitted), else simulated: the free space reported small, or os.posix_fallocate raising
ENOSPC.  For an export or a checkpoint it is always simulated (their files are tens of
megabytes even for the tiny model): the free space reported small, or the file write
raising ENOSPC after the first bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli_train import TINY, run, train
from test_hostile_inputs import assert_one_line_failure, snapshot

from mia.core.base import diskspace

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds processes through /proc")

#: a tmpfs this small holds one index of the tiny gallery (about 64 kB in pages) and
#: 32 kB more, where the next index needs about 52 kB: an update or a second index fails
SMALL_DISK = "96k"


def raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------- processes


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else int(parent)  # a zombie has exited: only its parent's wait is due


def children_of(pid: int) -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_of(int(p.name)) == pid}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def my_workers() -> set[int]:
    """This process's children, apart from multiprocessing's resource tracker (started
    with the first pool of a process, kept for its lifetime by design, and it exits with it)."""
    return {pid for pid in children_of(os.getpid()) if "resource_tracker" not in command_line(pid)}


def wait_until_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (alive := {pid for pid in pids if parent_of(pid) is not None}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# --------------------------------------------------------------------------- a small disk


@pytest.fixture
def disk(tmp_path):
    """A folder where writes run out of space: (folder, True) on a real tmpfs of
    :data:`SMALL_DISK`, or (folder, False) where this process may not mount one."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(folder)], capture_output=True).returncode == 0
    yield folder, mounted
    if mounted:  # lazily: a memory map of a failed build may still hold a deleted file there
        subprocess.run(["umount", "-l", str(folder)], check=True)


def run_out_of_space(monkeypatch, real: bool, when: str) -> None:
    """``before``: the disk lacks the room when the command starts; ``while``: the room was
    there at the start and went while the command wrote (another writer took it)."""
    if when == "while":
        monkeypatch.setattr(diskspace, "check_space", lambda *args, **kwargs: None)
        if not real:
            monkeypatch.setattr(os, "posix_fallocate", raise_enospc)
    elif not real:
        monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 20_000)


def temporary_files(folder: Path) -> list[str]:
    """mia's temporary names: ``.NAME.xxx.tmp`` while written, ``.NAME.old-PID`` while replaced."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and (".tmp" in p.name or ".old-" in p.name))


@pytest.fixture
def gallery(tiny_synth, tmp_path) -> Path:
    folder = tmp_path / "gallery"
    shutil.copytree(tiny_synth / "imgs", folder)
    return folder


def build_args(export: Path, gallery: Path, out: Path) -> list:
    # two decoding processes, several batches: the pool is busy when the disk runs out
    return ["index", "build", "--model", export, "--gallery", gallery, "--out", out, "--workers", 2, "--batch-size", 16]


# --------------------------------------------------------------------------- full disk: index


@pytest.mark.parametrize("when", ["before", "while"])
@pytest.mark.parametrize("update", [False, True], ids=["new-index", "update"])
def test_a_full_disk_stops_an_index_build_with_one_line_and_loses_nothing(tiny_model, gallery, disk, monkeypatch,
                                                                         when, update):
    _, export = tiny_model
    folder, real = disk
    old = folder / "index"
    assert run(*build_args(export, gallery, old)).exit_code == 0
    before = snapshot(old)
    out = old if update else folder / "another"
    if update:  # one changed file: the update re-encodes it and rewrites the whole index
        changed = gallery / "train" / "1_0.jpg"
        os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    run_out_of_space(monkeypatch, real, when)
    workers = my_workers()
    result = run(*build_args(export, gallery, out))
    line = assert_one_line_failure(result, 1, (f"no space left in {folder} for index {out}: it needs about",
                                               "are free"))
    if when == "before":  # refused up front: nothing encoded, no progress shown
        assert result.output.strip() == line
    assert temporary_files(folder) == [] and sorted(p.name for p in folder.iterdir()) == ["index"]
    assert my_workers() <= workers, [command_line(pid) for pid in my_workers() - workers]
    assert snapshot(old) == before
    verified = run("index", "verify", old)
    assert verified.exit_code == 0 and "every file intact" in verified.output


# --------------------------------------------------------------------------- full disk: export, train, cache


def test_a_full_disk_stops_an_export_with_one_line_and_keeps_the_previous_one(tiny_model, tmp_path, monkeypatch):
    import torch

    trained, export = tiny_model
    out = tmp_path / "export"
    shutil.copytree(export, out, ignore=shutil.ignore_patterns("gallery-cache"))
    before = snapshot(out)

    def export_onto_a_full_disk(model, args, f, **kwargs):  # the graph's first bytes fit, the rest does not
        Path(f).write_bytes(b"\0" * 4096)
        raise_enospc()

    monkeypatch.setattr(torch.onnx, "export", export_onto_a_full_disk)
    result = run("export", "onnx", "--checkpoint", trained / "best.pt", "--out", out, "--force", "--exporter",
                 "torchscript", "--device", "cpu")
    assert_one_line_failure(result, 1, (f"no space left in {tmp_path} for export {out}: it needs about", "MB, "))
    assert temporary_files(tmp_path) == [] and snapshot(out) == before


@pytest.fixture(scope="module")
def stopped_run(tiny_synth, tmp_path_factory) -> Path:
    """A run stopped after its first of two epochs."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    train(tiny_synth, out, "--stop-after", 1)
    return out


@pytest.mark.parametrize("when", ["before", "while"])
def test_a_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(stopped_run, tmp_path, monkeypatch,
                                                                                when):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    before = snapshot(out)
    if when == "before":
        monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 20_000)
    else:  # the room was there at the start; the disk fills after the checkpoint's first bytes
        write_bytes = Path.write_bytes

        def onto_a_full_disk(path: Path, data) -> int:
            if not path.name.startswith(".last.pt."):
                return write_bytes(path, data)
            write_bytes(path, bytes(memoryview(data)[:4096]))
            raise_enospc()

        monkeypatch.setattr(diskspace, "check_space", lambda *args, **kwargs: None)
        monkeypatch.setattr(Path, "write_bytes", onto_a_full_disk)
    result = run("train", "--out", out, "--resume", "--workers", 0, "--quiet")
    assert_one_line_failure(result, 1, (f"no space left in {out} for checkpoint {out / 'last.pt'}: it needs about",
                                        "are free"))
    assert snapshot(out) == before and temporary_files(out) == []


def test_a_full_disk_leaves_the_gallery_cache_unwritten_and_the_search_answers(tiny_model, gallery, tmp_path,
                                                                              monkeypatch):
    _, export = tiny_model
    monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 0)
    result = run("search", "a man in a black coat", "--model", export, "--gallery", gallery / "test", "--device", "cpu",
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "gallery: could not write the feature cache" in result.stderr and "no space left in" in result.stderr
    assert not list((tmp_path / "cache").iterdir())


def test_the_command_lines_own_failure_lines_know_a_full_disk(tmp_path, monkeypatch):
    """An ENOSPC met outside mia's atomic writes, and a crash whose traceback finds no room."""
    from mia.cli.failures import describe_crash, describe_os_error

    line = describe_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "file")))
    assert line.startswith(f"no space left in {tmp_path} for {tmp_path / 'file'}: only ") and line.endswith(" are free")
    monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 0)
    line = describe_crash(ZeroDivisionError("a bug"))
    assert "could not save the traceback (no space left in" in line and "\n" not in line


# --------------------------------------------------------------------------- killed outright


@pytest.fixture
def start(tmp_path):
    """``start(*mia_args)``: a mia command in a process group of its own, as a terminal
    starts it (stderr in a file: a pipe would stay open as long as any orphan holds it).
    Whatever is left of each group is killed when the test ends, passed or not."""
    processes = []

    def launch(*args) -> subprocess.Popen:
        log = tmp_path / f"stderr-{len(processes)}.txt"
        with log.open("w") as stderr:
            # SIGINT reset: a suite started in the background has it ignored, and its children
            # would inherit that (Python then never raises KeyboardInterrupt)
            process = subprocess.Popen([sys.executable, "-m", "mia.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                                       stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                       start_new_session=True,
                                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        process.log = log
        processes.append(process)
        return process

    yield launch
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def children_once_up(process: subprocess.Popen, count: int, kind: str = "") -> set[int]:
    """``process``'s children once ``count`` of them (with ``kind`` in their command line) run."""
    deadline = time.monotonic() + 120
    while len([p for p in children_of(process.pid) if kind in command_line(p)]) < count:
        assert process.poll() is None, process.log.read_text()
        assert time.monotonic() < deadline, f"{count} worker processes never started"
        time.sleep(0.05)
    return children_of(process.pid)


def big_gallery(tiny_synth: Path, tmp_path: Path) -> Path:
    """432 images: an index build is still encoding a while after its workers start."""
    gallery = tmp_path / "gallery"
    for copy in range(6):
        shutil.copytree(tiny_synth / "imgs", gallery / str(copy))
    return gallery


def test_a_killed_index_build_leaves_no_worker_process(tiny_model, tiny_synth, tmp_path, start):
    """SIGKILL, the one death a process cannot clean up after: its workers notice alone."""
    build = start(*build_args(tiny_model[1], big_gallery(tiny_synth, tmp_path), tmp_path / "index"))
    started = children_once_up(build, 2, "spawn_main")  # the workers and multiprocessing's resource tracker
    build.kill()
    build.wait()
    left = wait_until_gone(started, 5)
    assert not left, [command_line(pid) for pid in left]


def test_ctrl_c_stops_an_index_build_with_its_workers_and_no_traceback(tiny_model, tiny_synth, tmp_path, start):
    """Ctrl-C reaches every process of the terminal's group, the workers too: they leave it
    to the build, which cancels their work and shuts them down.  Sent while they are still
    starting up, where a worker that did not ignore it prints a traceback (one busy decoding
    would hand it back unseen, as its task's exception)."""
    build = start(*build_args(tiny_model[1], big_gallery(tiny_synth, tmp_path), tmp_path / "index"))
    started = children_once_up(build, 2, "spawn_main")
    time.sleep(0.1)  # just past the moment the build starts its workers, during which it ignores Ctrl-C itself
    os.killpg(build.pid, signal.SIGINT)
    build.wait(timeout=60)
    stderr = build.log.read_text()
    assert build.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "Aborted!", stderr
    left = wait_until_gone(started, 5)
    assert not left, [command_line(pid) for pid in left]
    assert temporary_files(tmp_path) == [] and not (tmp_path / "index").exists()


def test_a_killed_training_run_leaves_no_data_loader_worker(tiny_synth, tmp_path, start):
    """torch's DataLoader workers watch their parent themselves (every 5 s): checked, not assumed."""
    training = start("train", "--data", tiny_synth, "--out", tmp_path / "run", "--epochs", 3, *TINY,
                     "--workers", 2)  # the later --workers wins
    workers = children_once_up(training, 2)
    training.kill()
    training.wait()
    left = wait_until_gone(workers, 15)
    assert not left, [command_line(pid) for pid in left]
