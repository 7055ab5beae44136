"""Discovery and one-test execution for the omni.kit.test stand-in (used by tests/kit/harness.py)."""

from __future__ import annotations

import asyncio
import fnmatch
import importlib
import inspect
import pkgutil
import time
import traceback
import unittest
from dataclasses import dataclass


@dataclass
class TestOutcome:
    test_id: str
    outcome: str  # "passed", "failed", "error", "skipped"
    seconds: float
    detail: str = ""


def test_id(test: unittest.TestCase) -> str:
    cls = type(test)
    return f"{cls.__module__}.{cls.__qualname__}.{test._testMethodName}"


def discover_tests(python_modules: list[str], include: list[str] | None = None,
                   exclude: list[str] | None = None) -> tuple[list[unittest.TestCase], list[str]]:
    """Test cases of ``<module>.tests`` for each python module of an extension, and import problems."""
    tests: list[unittest.TestCase] = []
    problems: list[str] = []
    loader = unittest.TestLoader()
    seen: set[type] = set()
    for module_name in python_modules:
        pkg_name = f"{module_name}.tests"
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError as exc:
            if exc.name in (pkg_name, module_name):
                continue
            problems.append(f"importing {pkg_name} failed:\n{traceback.format_exc()}")
            continue
        except Exception:
            problems.append(f"importing {pkg_name} failed:\n{traceback.format_exc()}")
            continue
        modules = [pkg]
        if getattr(pkg, "scan_for_test_modules", False) and hasattr(pkg, "__path__"):
            for info in pkgutil.iter_modules(pkg.__path__):
                if info.name.startswith("test"):
                    try:
                        modules.append(importlib.import_module(f"{pkg_name}.{info.name}"))
                    except Exception:
                        problems.append(f"importing {pkg_name}.{info.name} failed:\n{traceback.format_exc()}")
        for module in modules:
            for obj in list(vars(module).values()):
                if (isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj not in seen
                        and obj.__module__.startswith(pkg_name)):
                    seen.add(obj)
                    tests.extend(loader.loadTestsFromTestCase(obj))
    tests.sort(key=test_id)
    if include:
        tests = [t for t in tests if any(fnmatch.fnmatch(test_id(t), p) for p in include)]
    if exclude:
        tests = [t for t in tests if not any(fnmatch.fnmatch(test_id(t), p) for p in exclude)]
    return tests, problems


async def _maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


async def run_test(test: unittest.TestCase, timeout: float) -> TestOutcome:
    """setUp, the test method, tearDown and cleanups of one test, each awaited on the running (Kit) loop."""
    tid = test_id(test)
    start = time.perf_counter()
    method = getattr(test, test._testMethodName)
    skip_why = (getattr(type(test), "__unittest_skip_why__", "") if getattr(type(test), "__unittest_skip__", False)
                else getattr(method, "__unittest_skip_why__", "") if getattr(method, "__unittest_skip__", False)
                else None)
    if skip_why is not None:
        return TestOutcome(tid, "skipped", 0.0, skip_why)
    outcome, detail = "passed", ""

    def failure(kind: str) -> None:
        nonlocal outcome, detail
        if outcome == "passed":
            outcome, detail = kind, traceback.format_exc()
        else:
            detail += "\n" + traceback.format_exc()

    try:
        await asyncio.wait_for(_maybe_await(test.setUp()), timeout)
    except unittest.SkipTest as exc:
        return TestOutcome(tid, "skipped", time.perf_counter() - start, str(exc))
    except Exception:
        failure("error")
    if outcome == "passed":
        try:
            await asyncio.wait_for(_maybe_await(method()), timeout)
        except unittest.SkipTest as exc:
            outcome, detail = "skipped", str(exc)
        except test.failureException:
            failure("failed")
        except TimeoutError:
            outcome, detail = "failed", f"timed out after {timeout:g} s (a test must not wait forever)"
        except Exception:
            failure("error")
        try:
            await asyncio.wait_for(_maybe_await(test.tearDown()), timeout)
        except Exception:
            failure("error")
    try:
        test.doCleanups()
    except Exception:
        failure("error")
    return TestOutcome(tid, outcome, time.perf_counter() - start, detail)
