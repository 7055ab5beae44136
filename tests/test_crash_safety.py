"""Crash safety with real processes: SIGKILL + resume, two runs on one folder, a dead run's lock, disk full
(tmpfs and file-size limit) and permission errors. Every interrupted dataset must end up byte-identical to an
uninterrupted run's."""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.manifest import LOCK_NAME, read_manifest, verify_entry

REPO = Path(__file__).resolve().parents[1]
FRAMES = 80  # the reference run; tests write a prefix of it
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "exts" / "sdgstudio.core"),
                                                    os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture(scope="module")
def reference(tiny_scene, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ref"
    assert main(["generate", "--config", str(tiny_scene), "--frames", str(FRAMES), "--out", str(out), "--quiet"]) == 0
    return out


def cli_args(scene: Path, out: Path, frames: int, resume: bool = False) -> list[str]:
    args = [sys.executable, "-m", "sdgstudio.core.cli", "generate", "--config", str(scene), "--frames", str(frames),
            "--out", str(out), "--quiet"]
    return args + ["--resume"] if resume else args


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def listed_count(out: Path) -> int:
    try:
        return (out / "manifest.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_listed(proc: subprocess.Popen, out: Path, count: int, timeout: float = 60.0) -> bool:
    """Poll until the manifest lists ``count`` frames (True), ``proc`` exits or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while listed_count(out) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def assert_consistent(out: Path) -> int:
    """Every frame the manifest lists is complete and the listed frames are 0..n-1; returns n."""
    entries = read_manifest(out)
    assert [e["frame"] for e in entries] == list(range(len(entries)))
    for entry in entries:
        assert verify_entry(out, entry) == []
    return len(entries)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def assert_matches_reference(out: Path, reference: Path, frames: int) -> None:
    """``out`` holds exactly the first ``frames`` frames of the reference run: same files, same bytes."""
    got = digests(out)
    want = {name: d for name, d in digests(reference).items()
            if name.split(".")[0][-6:].isdigit() and int(name.split(".")[0][-6:]) < frames}
    lines = (reference / "manifest.jsonl").read_bytes().splitlines(keepends=True)[:frames]
    want["manifest.jsonl"] = hashlib.sha256(b"".join(lines)).hexdigest()
    want["dataset.json"] = digests(reference)["dataset.json"]
    assert got == want  # also: no temp files, no lock file left


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_sigkill_at_20_points_then_resume_equals_an_uninterrupted_run(tiny_scene, reference, tmp_path):
    """SIGKILL at seeded random moments: while starting up, or a few ms after the k-th new frame was listed."""
    out = tmp_path / "killed"
    rng = random.Random(20240611)
    kills, stale_locks = 0, 0
    while kills < 20:
        listed = assert_consistent(out) if out.exists() else 0
        assert listed < FRAMES, f"the run finished after {kills} kills: raise FRAMES"
        proc = spawn(cli_args(tiny_scene, out, FRAMES, resume=(out / "dataset.json").exists()))
        new_frames = rng.randint(0, 2)
        if new_frames == 0:  # in start-up (imports, lock, dataset.json, cleanup of unlisted files) or 1st frame
            wait_for_listed(proc, out, listed + 1, timeout=rng.uniform(0.05, 2.0))
        else:  # while rendering and writing: mid-encode, mid-rename, mid-append
            assert wait_for_listed(proc, out, listed + new_frames), proc.stderr.read()
            time.sleep(rng.uniform(0.0, 0.02))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        _, stderr = proc.communicate()
        stale_locks += "took over the lock a killed run left" in stderr
    assert assert_consistent(out) < FRAMES
    had_lock = (out / LOCK_NAME).exists()
    final = subprocess.run(cli_args(tiny_scene, out, FRAMES, resume=True), env=ENV, cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert ("took over the lock a killed run left" in final.stderr) == had_lock
    assert_matches_reference(out, reference, FRAMES)


def test_second_run_on_a_busy_folder_exits_2_naming_the_first(tiny_scene, reference, tmp_path, capsys):
    out = tmp_path / "busy"
    frames = 30
    first = spawn(cli_args(tiny_scene, out, frames))
    try:
        assert wait_for_listed(first, out, 2)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, deterministically
        for resume in ([], ["--resume"]):
            args = ["generate", "--config", str(tiny_scene), "--frames", str(frames), "--out", str(out), "--quiet"]
            assert main(args + resume) == 2
            err = capsys.readouterr().err
            assert f"being written by another run (pid {first.pid} on " in one_error_line(err)
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert_matches_reference(out, reference, frames)


def test_lock_of_a_killed_process_is_detected_and_taken_over(tiny_scene, reference, tmp_path, capsys):
    out = tmp_path / "stale"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from sdgstudio.core.manifest import DatasetLock; "
         "DatasetLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)", str(out)],
        env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    assert main(["generate", "--config", str(tiny_scene), "--frames", "3", "--out", str(out), "--quiet"]) == 2
    assert f"pid {holder.pid} on" in one_error_line(capsys.readouterr().err)
    holder.kill()
    holder.wait()
    assert main(["generate", "--config", str(tiny_scene), "--frames", "3", "--out", str(out), "--quiet"]) == 0
    assert f"took over the lock a killed run left in {out} (pid {holder.pid} on" in capsys.readouterr().err
    assert_matches_reference(out, reference, 3)


def _limit_file_size(limit: int):
    def preexec() -> None:  # runs in the child before exec; Python ignores SIGXFSZ, so writes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_file_size_limit_stops_cleanly_and_resume_completes(tiny_scene, reference, tmp_path):
    """RLIMIT_FSIZE: manifest.jsonl (~6 KB a frame) outgrows 40 KB after a few frames, mid-append."""
    out = tmp_path / "efbig"
    frames = 20
    run = subprocess.run(cli_args(tiny_scene, out, frames), env=ENV, cwd=REPO, capture_output=True, text=True,
                         timeout=120, preexec_fn=_limit_file_size(40_000))
    assert run.returncode == 1, run.stderr
    line = one_error_line(run.stderr)
    assert "File too large" in line and "--resume" in line
    listed = assert_consistent(out)
    assert 0 < listed < frames and f"the {listed} frames in manifest.jsonl are complete" in line
    assert not (out / LOCK_NAME).exists()
    assert main(["generate", "--config", str(tiny_scene), "--frames", str(frames), "--out", str(out), "--resume",
                 "--quiet"]) == 0
    assert_matches_reference(out, reference, frames)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 600 KB tmpfs (room for ~10 frames of 64x48); needs root and mount permission."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount_point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root in a container that allows mount)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_stops_cleanly_and_resume_completes_after_space_is_freed(tiny_scene, reference, small_tmpfs):
    out = small_tmpfs / "full"
    frames = 30
    run = subprocess.run(cli_args(tiny_scene, out, frames), env=ENV, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1, run.stderr
    line = one_error_line(run.stderr)
    assert "No space left on device" in line and "--resume" in line
    listed = assert_consistent(out)
    assert 0 < listed < frames
    assert not list(out.glob(".*"))  # no temp files, no lock
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_tmpfs)], check=True)
    assert main(["generate", "--config", str(tiny_scene), "--frames", str(frames), "--out", str(out), "--resume",
                 "--quiet"]) == 0
    assert_matches_reference(out, reference, frames)


def _without_root_file_access() -> None:
    """In the child: drop CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER from the bounding set before exec,
    so even root gets EACCES in a folder without write permission."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_permission_denied_mid_run_stops_cleanly_and_resume_completes(tiny_scene, reference, tmp_path):
    preexec = _without_root_file_access if os.geteuid() == 0 else None
    if preexec is not None:
        try:
            subprocess.run(["true"], preexec_fn=preexec, check=True)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("root without CAP_SETPCAP: cannot drop CAP_DAC_OVERRIDE for the child")
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    run = subprocess.run(cli_args(tiny_scene, read_only, 3), env=ENV, cwd=REPO, capture_output=True, text=True,
                         timeout=120, preexec_fn=preexec)
    assert run.returncode == 1 and "Permission denied" in one_error_line(run.stderr), run.stderr
    assert list(read_only.iterdir()) == []

    out = tmp_path / "perm"
    frames = 30
    proc = spawn(cli_args(tiny_scene, out, frames), preexec_fn=preexec)
    try:
        assert wait_for_listed(proc, out, 3)
        proc.send_signal(signal.SIGSTOP)
        assert proc.poll() is None, "the run ended before it could be stopped"
        out.chmod(0o555)
    finally:
        proc.send_signal(signal.SIGCONT)
    try:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        line = one_error_line(stderr)
        assert "Permission denied" in line and "--resume" in line
        listed = assert_consistent(out)
        assert 3 <= listed < frames
    finally:
        out.chmod(0o755)
    assert main(["generate", "--config", str(tiny_scene), "--frames", str(frames), "--out", str(out), "--resume",
                 "--quiet"]) == 0
    assert_matches_reference(out, reference, frames)
