#!/usr/bin/env python3
"""Kit kernel test tier: our extensions load, start, pass their tests and shut down cleanly in the real Kit kernel.

    python tests/kit/run.py                 # every extension under exts/ (make test-kit)
    python tests/kit/run.py --only sdgstudio.core -v

Runs with any Python >= 3.11 (standard library only). It creates once, in ``.kit/venv-<hash>``, a Python 3.12 venv
with ``omniverse-kit`` (the Kit 110.4 kernel), ``usd-core``, ``warp-lang`` and the runtime dependencies of
pyproject.toml (not our package itself: in Kit, the extension folder provides ``sdgstudio.core``). The hash covers
the interpreter and every requirement, so a changed requirement builds a new venv.

Then, per extension found as ``<ext folder>/*/config/extension.toml`` and per ``[[test]]`` entry, it starts one
headless Kit process (``omni/kit_app.py omni.app.empty.kit --no-window --ext-folder ... --exec harness.py``) under a
hard timeout, with its own HOME and ``--portable-root`` in a temporary folder. tests/kit/harness.py enables the
extension, runs its tests on Kit's loop, disables it and looks for leaks. One more process checks the API contracts.

Prints ``N passed, N failed`` alone on the last line and exits 1 on any failed test, any problem (failed enable or
startup, error-level log line, leak on shutdown, contract violation), a crash or a hang. Without Python 3.12 it
prints a loud notice and exits 0 (this tier only is skipped) unless ``--require`` or ``SDG_KIT_REQUIRED=1``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness.py"
STANDIN_EXTS = HERE / "exts"
KIT_REQUIREMENTS = ["omniverse-kit==110.4.0.386251", "usd-core", "warp-lang"]
VENV_FORMAT = 1  # bump when the venv layout changes
EXIT_SKIPPED_REQUIRED = 3
_KIT_LOG = re.compile(r"^\S+ \[[^\]]*\] \[(Error|Fatal)\] \[([^\]]*)\] ?(.*)$")


def say(text: str = "") -> None:
    for line in str(text).splitlines() or [""]:
        print(f"[kit-tier] {line}", flush=True)


# ---------------------------------------------------------------------------------------------- Python 3.12


def _python_version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def find_python312() -> str | None:
    """KIT_PYTHON, else pyenv's 3.12.x, else python3.12 on PATH."""
    if os.environ.get("KIT_PYTHON"):
        exe = os.environ["KIT_PYTHON"]
        return exe if _python_version(exe) == (3, 12) else None
    candidates: list[str] = []
    try:
        out = subprocess.run(["pyenv", "prefix", "3.12.1"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(str(Path(out.stdout.strip().splitlines()[0]) / "bin" / "python3"))
    except (OSError, subprocess.SubprocessError):
        pass
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p / "bin" / "python3") for p in sorted((root / "versions").glob("3.12*"), reverse=True)]
    if shutil.which("python3.12"):
        candidates.append(shutil.which("python3.12"))
    for exe in candidates:
        if Path(exe).exists() and _python_version(exe) == (3, 12):
            return exe
    return None


def skipped_notice(require: bool) -> int:
    bar = "!" * 78
    msg = [bar, "!!  KIT KERNEL TIER SKIPPED: Python 3.12 was not found.",
           "!!  omniverse-kit 110.4 (the Kit kernel) needs CPython 3.12. Install it (e.g. `pyenv install 3.12.1`)",
           "!!  or point KIT_PYTHON at a python3.12. The pytest tier ran; this tier did NOT.", bar]
    for stream in (sys.stdout, sys.stderr):
        print("\n".join(msg), file=stream, flush=True)
    if require:
        print("SDG_KIT_REQUIRED / --require is set: failing.", flush=True)
        return EXIT_SKIPPED_REQUIRED
    return 0


# ---------------------------------------------------------------------------------------------- the venv


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def venv_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The Kit kernel pins plus our runtime dependencies (pyproject's spec wins for a package in both)."""
    with open(pyproject, "rb") as f:
        deps = list(tomllib.load(f)["project"]["dependencies"])
    ours = {_req_name(d) for d in deps}
    return [r for r in KIT_REQUIREMENTS if _req_name(r) not in ours] + deps


def venv_key(python: str, requirements: list[str]) -> str:
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                             check=True).stdout.strip()
    blob = json.dumps({"format": VENV_FORMAT, "python": [os.path.realpath(python), version],
                       "requirements": sorted(requirements)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_venv(python: str, kit_dir: Path, requirements: list[str]) -> Path:
    """``kit_dir/venv-<key>``, built once (under a lock, in a temporary folder renamed when complete)."""
    kit_dir.mkdir(parents=True, exist_ok=True)
    key = venv_key(python, requirements)
    venv = kit_dir / f"venv-{key}"
    if (venv / ".complete").exists():
        say(f"venv {venv.relative_to(kit_dir.parent) if venv.is_relative_to(kit_dir.parent) else venv} (cached)")
        return venv
    with open(kit_dir / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        start = time.perf_counter()
        say(f"building {venv} with {python}: {' '.join(requirements)}")
        tmp = kit_dir / f"venv-{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(tmp)], check=True)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *requirements], check=True)
        (tmp / ".complete").write_text(json.dumps({"requirements": requirements, "python": python}, indent=1))
        shutil.rmtree(venv, ignore_errors=True)
        tmp.rename(venv)  # the venv runs as <venv>/bin/python only (no console scripts), so moving it is safe
        for old in kit_dir.glob("venv-*"):
            if old != venv and old.is_dir() and not old.name.startswith(f"venv-{key}"):
                shutil.rmtree(old, ignore_errors=True)
        say(f"venv ready in {time.perf_counter() - start:.1f} s")
    return venv


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages in {venv}")
    return found[0]


# ---------------------------------------------------------------------------------------------- extensions, jobs


@dataclass
class Job:
    name: str
    mode: str  # "ext" or "contracts"
    ext: str = ""
    python_modules: list = field(default_factory=list)
    args: list = field(default_factory=list)
    dependencies: list = field(default_factory=list)
    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    timeout: float | None = None


def discover_jobs(ext_folders: list[Path], only: list[str] | None = None) -> list[Job]:
    """One job per ``[[test]]`` entry (or one, without any) of each ``<folder>/*/config/extension.toml``."""
    jobs = []
    for folder in ext_folders:
        for toml_path in sorted(folder.glob("*/config/extension.toml")):
            ext = toml_path.parent.parent.name
            if only and ext not in only:
                continue
            try:
                with open(toml_path, "rb") as f:
                    cfg = tomllib.load(f)
            except tomllib.TOMLDecodeError as exc:
                jobs.append(Job(name=f"{ext} (extension.toml)", mode="bad-toml", ext=f"{toml_path}: {exc}"))
                continue
            modules = cfg.get("python", {}).get("module", [])
            entries = cfg.get("test") or [{}]
            for i, entry in enumerate(entries):
                label = entry.get("name") or (str(i) if i > 0 else "")
                python_tests = entry.get("pythonTests", {})
                jobs.append(Job(name=ext + (f"[{label}]" if label else ""), mode="ext", ext=ext,
                                python_modules=modules, args=list(entry.get("args", [])),
                                dependencies=list(entry.get("dependencies", [])),
                                include=list(python_tests.get("include", [])),
                                exclude=list(python_tests.get("exclude", [])), timeout=entry.get("timeout")))
    return jobs


@dataclass
class JobResult:
    job: Job
    tests: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    log: Path | None = None

    @property
    def passed(self) -> int:
        return sum(t["outcome"] == "passed" for t in self.tests)

    @property
    def failed(self) -> int:
        return sum(t["outcome"] in ("failed", "error") for t in self.tests) + len(self.problems)

    @property
    def skipped(self) -> int:
        return sum(t["outcome"] == "skipped" for t in self.tests)


def kit_command(venv: Path, ext_folders: list[Path], job: Job, portable_root: Path) -> list[str]:
    site = site_packages(venv)
    cmd = [str(venv / "bin" / "python"), str(site / "omni" / "kit_app.py"), str(site / "omni" / "apps" /
           "omni.app.empty.kit"), "--no-window"]
    for folder in [*ext_folders, STANDIN_EXTS]:
        cmd += ["--ext-folder", str(folder)]
    for ext in ["omni.kit.async_engine", "contract_standin", "omni.kit.test", *job.dependencies]:
        cmd += ["--enable", ext]
    cmd += ["--exec", str(HARNESS), "--/app/runWithoutRunloop=true", "--portable-root", str(portable_root),
            "--/structuredLog/enable=false", "--/app/extensions/registryEnabled=0", "--/app/settings/persistent=0",
            *job.args]
    return cmd


def run_job(job: Job, venv: Path, ext_folders: list[Path], kit_dir: Path, timeout: float, test_timeout: float,
            verbose: bool) -> JobResult:
    result = JobResult(job)
    if job.mode == "bad-toml":
        result.problems.append({"phase": "enable", "message": f"extension.toml does not parse: {job.ext}"})
        return result
    logs = kit_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result.log = logs / (re.sub(r"[^A-Za-z0-9_.-]+", "_", job.name) + ".log")
    limit = float(job.timeout or timeout)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sdg-kit-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "home").mkdir()
        result_file = tmp_path / "result.json"
        spec = {"name": job.name, "mode": job.mode, "ext": job.ext, "python_modules": job.python_modules,
                "include": job.include, "exclude": job.exclude, "result_file": str(result_file),
                "test_timeout": min(test_timeout, max(limit - 15, 5))}
        env = {**os.environ, "HOME": str(tmp_path / "home"), "OMNI_KIT_ACCEPT_EULA": "YES",
               "OMNI_KIT_ALLOW_ROOT": "1", "SDG_KIT_JOB": json.dumps(spec),
               "WARP_CACHE_PATH": str(kit_dir / "warp-cache"), "PYTHONNOUSERSITE": "1",
               "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache")}
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(var, None)
        cmd = kit_command(venv, ext_folders, job, tmp_path / "portable")
        lines: list[str] = []
        proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if verbose or line.startswith("[kit-tier]") or _KIT_LOG.match(line):
                    print(line if line.startswith("[kit-tier]") else f"    | {line}", flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        reader.join(timeout=10)
        result.seconds = time.perf_counter() - start
        result.log.write_text("\n".join(lines) + "\n")
        report = json.loads(result_file.read_text()) if result_file.exists() else None

    if report is not None:
        result.tests = report.get("tests", [])
        result.problems = list(report.get("problems", []))
    if timed_out:
        running = [ln.split("RUN ", 1)[1] for ln in lines if ln.startswith("[kit-tier] RUN ")]
        done = {t["id"] for t in result.tests}
        last = next((r for r in reversed(running) if r not in done), None)
        where = f" while running {last}" if last else ""
        result.problems.append({"phase": "hang", "message": f"Kit did not finish within {limit:g} s{where}; killed "
                                "(a test or extension blocked Kit's main thread or never returned)"})
    elif report is None:
        tail = "\n".join(lines[-25:])
        result.problems.append({"phase": "crash", "message": f"Kit exited with code {rc} before the harness "
                                f"reported (crash, or failed to start):\n{tail}"})
    elif not report.get("finished"):
        pass  # the harness reported its own failure as a problem
    elif rc != (1 if result.failed else 0):
        result.problems.append({"phase": "exit", "message": f"Kit exited with code {rc}, expected "
                                f"{1 if result.failed else 0}"})
    # error-level lines outside the harness's window (boot, app shutdown) are the runner's to report
    inside = False
    for line in lines:
        if line.startswith("[kit-tier] HARNESS START"):
            inside = True
        elif line.startswith("[kit-tier] HARNESS END"):
            inside = False
        elif not inside and (m := _KIT_LOG.match(line)):
            result.problems.append({"phase": "log", "message": f"error-level log line outside the tests: "
                                    f"[{m.group(2)}] {m.group(3)}"})
    return result


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ext-folder", action="append", type=Path, help="extension folder (default: exts/)")
    ap.add_argument("--only", action="append", help="test only this extension (repeatable)")
    ap.add_argument("--timeout", type=float, default=180.0, help="hard limit per Kit process, seconds")
    ap.add_argument("--test-timeout", type=float, default=120.0, help="limit per test, seconds")
    ap.add_argument("--no-contracts", action="store_true", help="skip the API-contract job")
    ap.add_argument("--kit-dir", type=Path, default=REPO / ".kit", help="cache folder (venv, warp kernels, logs)")
    ap.add_argument("--python", help="a Python 3.12 (default: KIT_PYTHON, pyenv 3.12, python3.12)")
    ap.add_argument("--setup-only", action="store_true", help="build the venv and stop")
    ap.add_argument("--require", action="store_true", help="fail instead of skipping without Python 3.12")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo all of Kit's output")
    args = ap.parse_args(argv)
    require = args.require or os.environ.get("SDG_KIT_REQUIRED", "") not in ("", "0")

    start = time.perf_counter()
    python = args.python or find_python312()
    if python is None:
        return skipped_notice(require)
    try:
        venv = ensure_venv(python, args.kit_dir.resolve(), venv_requirements())
    except subprocess.CalledProcessError as exc:
        say(f"could not build the Kit venv: {exc}")
        print("0 passed, 1 failed", flush=True)
        return 1
    if args.setup_only:
        return 0

    ext_folders = [p.resolve() for p in (args.ext_folder or [REPO / "exts"])]
    jobs = discover_jobs(ext_folders, args.only)
    if args.only:
        missing = set(args.only) - {j.ext for j in jobs}
        if missing:
            say(f"no extension named {', '.join(sorted(missing))} in {', '.join(map(str, ext_folders))}")
            print("0 passed, 1 failed", flush=True)
            return 1
    if not args.no_contracts:
        jobs.insert(0, Job(name="api-contracts", mode="contracts"))
    results = []
    for job in jobs:
        say(f"===== {job.name}")
        res = run_job(job, venv, ext_folders, args.kit_dir.resolve(), args.timeout, args.test_timeout, args.verbose)
        results.append(res)
        say(f"{job.name}: {res.passed} passed, {res.failed} failed, {res.skipped} skipped ({res.seconds:.1f} s)"
            + (f"; log: {res.log}" if res.failed and res.log else ""))

    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    if failed:
        say("===== failures")
        for r in results:
            for t in r.tests:
                if t["outcome"] in ("failed", "error"):
                    say(f"FAILED {r.job.name}: {t['id']}")
                    say("    " + t["detail"].strip().replace("\n", "\n    "))
            for p in r.problems:
                say(f"FAILED {r.job.name} [{p['phase']}]: " + p["message"].strip().replace("\n", "\n    "))
    say(f"Kit tier took {time.perf_counter() - start:.1f} s")
    if args.json:
        args.json.write_text(json.dumps([{"job": r.job.name, "ext": r.job.ext, "tests": r.tests,
                                          "problems": r.problems, "seconds": r.seconds} for r in results], indent=1))
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
