"""Runs inside the Kit kernel (``--exec``): enable one extension, run its tests on Kit's loop, disable it, check leaks.

Started by tests/kit/run.py with the job in the environment variable ``SDG_KIT_JOB`` (JSON). It writes a JSON
report to ``job["result_file"]`` and always ends Kit itself (``post_quit``), so a broken extension cannot make the
app run forever; a test that blocks the main thread is caught by the runner's hard timeout instead.

Modes:
* ``ext``: the extension tier described in docs/testing.md.
* ``contracts``: the API contracts themselves: the real kernel modules (carb, omni.kit.app, omni.ext,
  omni.kit.async_engine) and the hand-written omni.kit.test stand-in against their contracts, and each generated
  stand-in builds from its contract.

Everything printed for the runner starts with ``[kit-tier]``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import carb
import carb.eventdispatcher
import omni.kit.app
import omni.kit.async_engine

JOB = json.loads(os.environ["SDG_KIT_JOB"])
APP = omni.kit.app.get_app()
MANAGER = APP.get_extension_manager()
report: dict = {"job": JOB.get("name"), "tests": [], "problems": [], "warnings": [], "finished": False}


def say(text: str) -> None:
    for line in str(text).splitlines() or [""]:
        print(f"[kit-tier] {line}", flush=True)


def problem(phase: str, message: str) -> None:
    report["problems"].append({"phase": phase, "message": message})
    say(f"PROBLEM [{phase}] {message}")


class LogWatcher:
    """Every warning and error Kit logs (GLOBAL_EVENT_ERROR_LOG_IMMEDIATE carries both), in order."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.claimed: set[int] = set()  # indices of errors some phase or test has reported
        self._lock = threading.Lock()
        self._guard = carb.eventdispatcher.get_eventdispatcher().observe_event(
            event_name=omni.kit.app.GLOBAL_EVENT_ERROR_LOG_IMMEDIATE, on_event=self._on_log,
            observer_name="sdg kit-tier harness log watcher")

    def _on_log(self, event) -> None:
        try:
            payload = dict(event.payload)
        except Exception:
            payload = {"level": 1, "source": "?", "message": str(event)}
        with self._lock:
            self.entries.append(payload)

    def mark(self) -> int:
        return len(self.entries)

    def errors_since(self, mark: int) -> list[dict]:
        found = [(i, e) for i, e in enumerate(self.entries) if i >= mark and int(e.get("level", 1)) >= 1]
        self.claimed.update(i for i, _ in found)
        return [e for _, e in found]

    def unclaimed_errors(self) -> list[dict]:
        return [e for i, e in enumerate(self.entries) if int(e.get("level", 1)) >= 1 and i not in self.claimed]

    def warnings_since(self, mark: int) -> list[dict]:
        return [e for e in self.entries[mark:] if int(e.get("level", 1)) == 0]


def _clip(message: str, head: int = 5, tail: int = 6) -> str:
    """Long messages (tracebacks) keep their first lines and the last ones, where the error is named."""
    lines = message.rstrip().splitlines()
    if len(lines) <= head + tail + 1:
        return "\n".join(lines)
    return "\n".join([*lines[:head], f"    ... ({len(lines) - head - tail} lines)", *lines[-tail:]])


def fmt_log(entries: list[dict], limit: int = 6) -> str:
    lines = [f"[{e.get('source', '?')}] {_clip(str(e.get('message', '')))}" for e in entries[:limit]]
    if len(entries) > limit:
        lines.append(f"... and {len(entries) - limit} more")
    return "\n".join(lines)


def dependency_hint(entries: list[dict]) -> str:
    """Kit's solver message names the missing dependency ("No versions of X that satisfies: E depends on X")."""
    for e in entries:
        msg = e.get("message", "")
        if "No versions of" in msg:
            line = next(ln for ln in msg.splitlines() if "No versions of" in ln)
            return f"missing dependency: {line.strip(' *')}"
        if "Failed to resolve extension dependencies" in msg:
            return "extension dependencies could not be resolved"
    return ""


async def updates(n: int) -> None:
    for _ in range(n):
        await APP.next_update_async()


# ---------------------------------------------------------------------------------------------- ext mode


async def run_extension(log: LogWatcher) -> None:
    import omni.kit.test as kit_test
    from contract_standin import resources
    from contract_standin.standin import violations

    ext = JOB["ext"]
    resources.instrument_kernel()
    v_mark = len(violations)

    # ---- enable (Kit resolves dependencies, imports the python modules, calls on_startup)
    say(f"ENABLE {ext}")
    mark = log.mark()
    ok = MANAGER.set_extension_enabled_immediate(ext, True)
    await updates(2)
    errors = log.errors_since(mark)
    enabled = MANAGER.is_extension_enabled(ext)
    started = ok and enabled and not errors
    if not ok or not enabled:
        hint = dependency_hint(errors)
        problem("enable", f"{ext} failed to enable" + (f" ({hint})" if hint else "") +
                (f":\n{fmt_log(errors)}" if errors else ": the extension manager refused it"))
    elif errors:
        problem("startup", f"{ext} logged errors while starting (syntax error, import error or exception in "
                f"on_startup):\n{fmt_log(errors)}")
    _report_violations(violations, v_mark, "startup")

    ext_id = MANAGER.get_enabled_extension_id(ext) if enabled else None
    ext_path = str(Path(MANAGER.get_extension_path(ext_id)).resolve()) if ext_id else None

    # ---- tests, one at a time on Kit's loop
    if started:
        modules = [m["name"] for m in JOB.get("python_modules", [])]
        tests, import_problems = kit_test._discover_tests(modules, JOB.get("include"), JOB.get("exclude"))
        for message in import_problems:
            problem("discovery", message)
        say(f"{len(tests)} tests in {', '.join(modules)}")
        for test in tests:
            await run_one(test, kit_test, log, violations)
        tests.clear()  # test cases hold what they built: drop them before the leak check
        test = None  # noqa: F841
        gc.collect()

    # ---- disable (on_shutdown) and look for what it left behind
    if enabled:
        await shutdown_and_check(ext, ext_path, log, violations)
    if not report["problems"]:
        report["tests"].append({"id": f"{ext}: enables, starts and shuts down without errors or leaks",
                                "outcome": "passed", "seconds": 0.0, "detail": ""})


async def run_one(test, kit_test, log: LogWatcher, violations: list) -> None:
    tid = kit_test._runner.test_id(test)
    mark, v_mark = log.mark(), len(violations)
    say(f"RUN {tid}")
    result = await kit_test._run_test(test, float(JOB.get("test_timeout", 120)))
    outcome, detail = result.outcome, result.detail
    errors = log.errors_since(mark)
    broken = violations[v_mark:]
    if outcome in ("passed", "skipped") and broken:
        outcome, detail = "failed", "API contract violation (raised, then swallowed):\n" + "\n".join(broken)
    elif broken:
        detail += "\nAPI contract violations:\n" + "\n".join(broken)
    if outcome in ("passed", "skipped") and errors:
        outcome, detail = "failed", f"error logged during the test:\n{fmt_log(errors)}"
    report["tests"].append({"id": tid, "outcome": outcome, "seconds": round(result.seconds, 3), "detail": detail})
    say(f"{outcome.upper()} {tid} ({result.seconds:.2f} s)")
    if outcome not in ("passed", "skipped") or (outcome == "skipped" and detail):
        say(detail.rstrip())


def _report_violations(violations: list, mark: int, phase: str) -> None:
    if len(violations) > mark:
        problem(phase, "API contract violation:\n" + "\n".join(violations[mark:]))


async def shutdown_and_check(ext: str, ext_path: str | None, log: LogWatcher, violations: list) -> None:
    from contract_standin import resources

    say(f"DISABLE {ext}")
    v_mark = len(violations)
    ours = [r for r in resources.all_resources() if ext_path and r.frames_under(ext_path)]
    calls_before = {id(r): r.calls for r in ours}
    mark = log.mark()
    ok = MANAGER.set_extension_enabled_immediate(ext, False)
    await updates(3)
    gc.collect()
    await updates(2)
    errors = log.errors_since(mark)
    warnings = log.warnings_since(mark)
    if not ok or MANAGER.is_extension_enabled(ext):
        problem("shutdown", f"{ext} could not be disabled")
    if errors:
        problem("shutdown", f"{ext} logged errors while shutting down:\n{fmt_log(errors)}")
    alive = [w for w in warnings if "extension object is still alive" in w.get("message", "")]
    if alive:
        problem("shutdown", "the extension object is still alive after on_shutdown (a subscription, callback or "
                f"global still references it):\n{fmt_log(alive)}")
    _report_violations(violations, v_mark, "shutdown")
    if ext_path is None:
        return
    for res in resources.live(ext_path):
        problem("shutdown", f"leaked {res.kind}: {res.description}, still live after on_shutdown; created at "
                f"{res.origin(ext_path)}")
    for res in ours:
        if res.calls > calls_before.get(id(res), res.calls):
            problem("shutdown", f"{res.kind} {res.description} still fires after on_shutdown "
                    f"({res.calls - calls_before[id(res)]} calls); created at {res.origin(ext_path)}")
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and code.co_filename.startswith(ext_path):
            problem("shutdown", f"asyncio task {task.get_coro().__qualname__} ({code.co_filename}:"
                    f"{code.co_firstlineno}) still running after on_shutdown; keep the task and cancel it")
            task.cancel()


# ---------------------------------------------------------------------------------------------- contracts mode


async def check_contracts(log: LogWatcher) -> None:
    import importlib

    from contract_standin import all_contracts, check_module_against_contract, validate_contract

    for contract in all_contracts():
        start = time.perf_counter()
        tid = f"contract {contract.file} ({contract.module})"
        problems = validate_contract(contract)
        try:
            if contract.standin and contract.module != "omni.kit.test":
                MANAGER.set_extension_enabled_immediate(contract.module, True)
                await updates(1)
            module = importlib.import_module(contract.module)
            for sub in sorted(contract.submodules):
                try:
                    importlib.import_module(f"{contract.module}.{sub}")
                except ImportError:
                    pass  # attribute-only submodules (carb.settings is a real package; stand-ins build them)
            if not contract.standin or contract.module == "omni.kit.test":
                problems += check_module_against_contract(module, contract)
            elif not getattr(module, "__standin__", False):
                problems.append(f"{contract.module} is not the generated stand-in ({module.__file__})")
        except Exception:
            problems.append(traceback.format_exc())
        outcome = "failed" if problems else "passed"
        report["tests"].append({"id": tid, "outcome": outcome, "seconds": round(time.perf_counter() - start, 3),
                                "detail": "\n".join(problems)})
        say(f"{outcome.upper()} {tid}")
        if problems:
            say("\n".join(problems))

    # the stand-ins' own tests (contract_standin/tests): they behave as the contracts say
    import omni.kit.test as kit_test
    from contract_standin.standin import violations

    tests, import_problems = kit_test._discover_tests(["contract_standin"])
    for message in import_problems:
        problem("discovery", message)
    for test in tests:
        await run_one(test, kit_test, log, violations)


# ---------------------------------------------------------------------------------------------- main


async def main() -> None:
    say(f"HARNESS START {JOB.get('name')} (Kit {APP.get_kit_version()}, Python {sys.version.split()[0]})")
    log = LogWatcher()
    start_mark = log.mark()
    exit_code = 1
    try:
        if JOB.get("mode") == "contracts":
            await check_contracts(log)
        else:
            await run_extension(log)
        report["finished"] = True
    except BaseException:
        problem("harness", f"the harness itself failed:\n{traceback.format_exc()}")
    finally:
        stray = log.unclaimed_errors()
        if stray:
            problem("log", f"error-level log lines outside any test or phase:\n{fmt_log(stray)}")
        report["log_errors"] = len(log.errors_since(start_mark))
        report["warnings"] = [f"[{w.get('source')}] {w.get('message')}" for w in log.warnings_since(start_mark)]
        failed = report["problems"] or any(t["outcome"] in ("failed", "error") for t in report["tests"])
        exit_code = 1 if failed else 0
        Path(JOB["result_file"]).write_text(json.dumps(report, indent=1))
        say(f"HARNESS END rc={exit_code}")
        APP.post_quit(exit_code)


_task = omni.kit.async_engine.run_coroutine(main())
