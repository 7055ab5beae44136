"""Test-only helpers of the Kit tier: API contracts, the stand-ins generated from them, and a resource registry.

Nothing here is imported by our extensions; the stand-in extensions (``tests/kit/exts/omni.ui`` ...) and the harness
use it. ``contract`` is standard library only, so the Python 3.11 pytest scan reads the same contracts.
"""

from __future__ import annotations

from .contract import (
    CONTRACTS_DIR,
    CallableSpec,
    ClassSpec,
    Contract,
    ContractAttributeError,
    ContractError,
    ContractViolation,
    all_contracts,
    contract_for_module,
    load_contract,
    parse_signature,
    validate_contract,
)
from .standin import Call, Recorder, install_standin, next_update, violations

__all__ = [
    "CONTRACTS_DIR", "CallableSpec", "ClassSpec", "Contract", "ContractAttributeError", "ContractError",
    "ContractViolation", "all_contracts", "contract_for_module", "load_contract", "parse_signature",
    "validate_contract", "Call", "Recorder", "install_standin", "next_update", "violations", "recorder",
    "check_module_against_contract",
]


def recorder(module) -> Recorder:
    """The call recorder of a stand-in module (``recorder(omni.ui).find("Window")``)."""
    rec = getattr(module, "__recorder__", None)
    if rec is None:
        raise TypeError(f"{getattr(module, '__name__', module)} is not a contract stand-in")
    return rec


def check_module_against_contract(module, contract: Contract) -> list[str]:
    """Names, methods and keywords of ``contract`` that the live ``module`` lacks (real kernel or hand-written).

    Python callables are compared with ``inspect.signature``; pybind11 callables with the signature lines of their
    docstrings (``name(self: T, a: int = 0, ...) -> R``).
    """
    import inspect
    import re

    problems: list[str] = []

    def lookup(dotted: str):
        obj = module
        for part in dotted.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                return None
        return obj

    def keywords_of(obj) -> set[str] | None:
        try:
            sig = inspect.signature(obj)
            if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
                return None  # accepts any keyword
            return set(sig.parameters)
        except (TypeError, ValueError):
            pass
        doc = getattr(obj, "__doc__", "") or ""
        name = getattr(obj, "__name__", "")
        names: set[str] = set()
        for m in re.finditer(rf"(?:^|\n)\s*(?:\d+\.\s*)?{re.escape(name)}\((.*?)\)\s*->", doc):
            for part in m.group(1).split(","):
                key = part.strip().split(":")[0].split("=")[0].strip().lstrip("*")
                if key:
                    names.add(key)
        return names or None

    def check_callable(qual: str, obj, spec: CallableSpec) -> None:
        if obj is None:
            problems.append(f"{qual}: missing")
            return
        if not callable(obj):
            problems.append(f"{qual}: not callable")
            return
        real = keywords_of(obj)
        if real is None:
            return
        for p in spec.signature.parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in real:
                problems.append(f"{qual}: parameter '{p.name}' is not in the real signature ({sorted(real)})")

    for name, spec in contract.functions.items():
        check_callable(f"{contract.module}.{name}", lookup(name), spec)
    for name, cspec in contract.classes.items():
        cls = lookup(name)
        if cls is None:
            problems.append(f"{contract.module}.{name}: missing")
            continue
        for m, mspec in cspec.methods.items():
            check_callable(f"{contract.module}.{name}.{m}", getattr(cls, m, None), mspec)
        for attr in cspec.attributes:
            if not hasattr(cls, attr) and not _instance_attr_documented(cls, attr):
                problems.append(f"{contract.module}.{name}.{attr}: attribute missing")
    for name, espec in contract.enums.items():
        enum = lookup(name)
        if enum is None:
            problems.append(f"{contract.module}.{name}: missing")
            continue
        for member in espec.members:
            if not hasattr(enum, member):
                problems.append(f"{contract.module}.{name}.{member}: missing")
    for name in contract.constants:
        if lookup(name) is None:
            problems.append(f"{contract.module}.{name}: missing")
    return problems


def _instance_attr_documented(cls, attr: str) -> bool:
    # attributes set in __init__ (e.g. on Python classes) are not on the class; accept a mention in __init__'s source
    import inspect

    try:
        return f"self.{attr}" in inspect.getsource(cls)
    except (OSError, TypeError):
        return False
