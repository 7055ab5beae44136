"""MPS for workers sharing a GPU: the daemon's lifetime (started with private folders, asked to quit, even when the
body fails) and launch's refusals. A stand-in ``nvidia-cuda-mps-control`` on PATH records how it was called."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.launch import runtime_env
from sdgstudio.core.mps import CONTROL, LOG_ENV, PIPE_ENV, MPSError, mps_daemon

STAND_IN = f"""#!{sys.executable}
import json, os, sys
pipe = os.environ.get("{PIPE_ENV}")
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "pipe": pipe, "log": os.environ.get("{LOG_ENV}"),
                          "folders": bool(pipe) and os.path.isdir(pipe) and os.path.isdir(os.environ["{LOG_ENV}"]),
                          "stdin": "" if sys.argv[1:] else sys.stdin.read()}}) + "\\n")
if os.environ.get("STAND_IN_CLIENT") and not sys.argv[1:]:  # a client still attached: quit waits for it
    import time
    time.sleep(3)
if os.environ.get("STAND_IN_FAIL"):
    print("An instance of this daemon is already running", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def calls(tmp_path, monkeypatch):
    """The stand-in control program on PATH; returns a function reading its calls so far."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / CONTROL
    program.write_text(STAND_IN)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_daemon_started_with_private_folders_and_asked_to_quit(calls):
    with mps_daemon() as env:
        (start,) = calls()
        assert start["argv"] == ["-d"] and start["folders"]
        assert (start["pipe"], start["log"]) == (env[PIPE_ENV], env[LOG_ENV])
        assert Path(env[PIPE_ENV]).is_dir(), "clients find the daemon here while the block runs"
    start, stop = calls()
    assert stop == {**start, "argv": [], "stdin": "quit\n"}, "the same daemon (same pipe folder) is told to quit"
    assert not Path(env[PIPE_ENV]).parent.exists(), "its folder is removed"


def test_daemon_quits_when_the_body_fails(calls):
    with pytest.raises(KeyboardInterrupt), mps_daemon() as env:
        raise KeyboardInterrupt
    assert [c["stdin"] for c in calls()] == ["", "quit\n"]
    assert not Path(env[PIPE_ENV]).parent.exists()


def test_a_caller_that_is_a_client_does_not_wait_for_the_daemon(calls, monkeypatch):
    monkeypatch.setenv("STAND_IN_CLIENT", "1")
    with mps_daemon(quit_wait_s=0.2) as env:
        pass
    assert Path(env[PIPE_ENV]).is_dir(), "the daemon still runs: its folder stays"
    assert [c["stdin"] for c in calls()] == ["", "quit\n"], "told to quit; it ends once this client has"


def test_a_daemon_that_does_not_start_is_one_error_line(calls, monkeypatch):
    monkeypatch.setenv("STAND_IN_FAIL", "1")
    with pytest.raises(MPSError, match=r"-d failed \(exit 1\): An instance of this daemon is already running$"):
        with mps_daemon():
            pytest.fail("the body must not run")
    assert len(calls()) == 1, "nothing to stop"


def test_no_control_program(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MPSError, match=f"^{CONTROL} not found on PATH"):
        with mps_daemon():
            pass


def test_workers_get_the_daemon_environment():
    env = runtime_env({PIPE_ENV: "/tmp/x/pipe"})["env_vars"]
    assert env[PIPE_ENV] == "/tmp/x/pipe" and "PYTHONPATH" in env


def test_cli_launch_refuses_mps_where_it_cannot_serve(tabletop, tmp_path, capsys, calls):
    from sdgstudio.core.config import save_config

    save_config(tabletop, tmp_path / "scene.toml")
    argv = ["launch", "--workers", "2", "--config", str(tmp_path / "scene.toml"), "--frames", "3", "--quiet",
            "--out", str(tmp_path / "o"), "--mps"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == "error: --mps is for workers sharing a GPU; the device is cpu"
    assert main([*argv, "--gpus-per-worker", "0.5", "--ray", "auto"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --mps starts MPS for a local cluster; on an existing")
    assert calls() == [] and not (tmp_path / "o").exists()
