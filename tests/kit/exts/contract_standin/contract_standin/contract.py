"""API contracts: which names, signatures and keywords of Kit / Isaac Sim APIs our code may use.

A contract is a TOML file in ``tests/kit/contracts/`` describing one module (``module = "omni.ui"``). This module
parses it (standard library only, so Python 3.11 pytest and the Kit 3.12 kernel share it). The format:

.. code-block:: toml

    module = "omni.ui"
    standin = true                      # a test-only stand-in extension is generated from this file
    [sources]                           # abbreviations; every entry's ``source`` starts with one, or with http
    UI = "https://docs.omniverse.nvidia.com/kit/docs/omni.ui/latest/"

    [functions]                         # module-level (dotted for submodules: "create.render_product")
    get_context = { sig = "(name: str = '') -> UsdContext", source = "TYP5 omni/usd/__init__.pyi" }

    [classes.Window]
    source = "UI omni.ui/omni.ui.Window.html"
    bases = ["Widget"]                  # contract classes (or "omni.ui.Window" from another contract)
    init = "(title: str, dockPreference: DockPreference = DockPreference.DISABLED, **kwargs)"
    kwargs = ["flags", "visible"]       # what ``**kwargs`` may hold (inherited from bases); "any" = anything
    attributes = { frame = "Frame" }    # readable/writable attributes and their types
    [classes.Window.methods]            # method signatures without ``self``; "async (...)" for coroutines
    deferred_dock_in = "(target_window: str, active_window: DockPolicy = DockPolicy.DO_NOTHING) -> None"

    [enums.DockPreference]
    members = ["DISABLED", "MAIN"]
    [constants]
    WINDOW_FLAGS_NO_SCROLLBAR = 8

A method entry may also be a table ``{ sig = "...", source = "...", static = true, kwargs = [...] }``.
Return annotations name contract classes (``-> Annotator``), ``self``, ``None`` or plain Python types; the stand-ins
return an object of that type, the static scan follows them to type chained calls.
"""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"

_EMPTY = inspect.Parameter.empty


class ContractError(ValueError):
    """A contract file that is malformed (bad signature, unknown base, missing source)."""


class ContractViolation(TypeError):
    """Our code called a stand-in with a keyword, argument count or signature not in the contract."""


class ContractAttributeError(AttributeError):
    """Our code used a name that the contract does not list."""


@dataclass
class CallableSpec:
    """One function or method of a contract."""

    qualname: str  # e.g. "omni.ui.Window.deferred_dock_in"
    signature: inspect.Signature
    returns: str | None
    is_async: bool
    source: str
    static: bool = False
    kwargs: frozenset[str] | str = frozenset()  # allowed keys of **kwargs, or "any"
    text: str = ""

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def accepts_keyword(self, key: str) -> bool:
        params = self.signature.parameters
        p = params.get(key)
        if p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return True
        has_var_kw = any(q.kind is q.VAR_KEYWORD for q in params.values())
        return has_var_kw and (self.kwargs == "any" or key in self.kwargs)

    def _kwargs_hint(self) -> str:
        if isinstance(self.kwargs, frozenset) and self.kwargs:
            return f"; **kwargs may be: {', '.join(sorted(self.kwargs))}"
        return ""

    def check_call(self, args: tuple, kwargs: dict, contract_file: str = "") -> inspect.BoundArguments:
        """Bind a call to the contract signature; raise :class:`ContractViolation` naming what is not in it."""
        where = f" ({contract_file})" if contract_file else ""
        for key in kwargs:
            if not self.accepts_keyword(key):
                raise ContractViolation(
                    f"API contract: {self.qualname}() got keyword '{key}', which is not in the contract{where}; "
                    f"contract signature: {self.qualname}{self.text}" + self._kwargs_hint()
                )
        try:
            return self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ContractViolation(
                f"API contract: {self.qualname}(): {exc}{where}; contract signature: {self.qualname}{self.text}"
            ) from None


@dataclass
class ClassSpec:
    qualname: str  # "omni.ui.Window"
    name: str  # "Window" (or "orchestrator.Status" for classes in submodules)
    source: str
    bases: list[str] = field(default_factory=list)
    python_bases: list[str] = field(default_factory=list)  # e.g. "unittest.TestCase": any attribute of it is allowed
    init: CallableSpec | None = None
    kwargs: frozenset[str] | str = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)
    methods: dict[str, CallableSpec] = field(default_factory=dict)
    module: str = ""  # the contract module that defines it (inherited entries resolve their types there)


@dataclass
class EnumSpec:
    qualname: str
    name: str
    members: list[str]
    source: str


@dataclass
class Contract:
    module: str
    path: Path
    standin: bool
    sources: dict[str, str]
    functions: dict[str, CallableSpec] = field(default_factory=dict)
    classes: dict[str, ClassSpec] = field(default_factory=dict)
    enums: dict[str, EnumSpec] = field(default_factory=dict)
    constants: dict[str, object] = field(default_factory=dict)
    constant_sources: dict[str, str] = field(default_factory=dict)
    submodules: set[str] = field(default_factory=set)
    data: dict = field(default_factory=dict)  # free-form lists a stand-in needs (e.g. known annotator names)

    @property
    def file(self) -> str:
        return self.path.name

    def names(self) -> set[str]:
        """Every dotted name below the module this contract allows (functions, classes, enums, constants)."""
        return set(self.functions) | set(self.classes) | set(self.enums) | set(self.constants) | self.submodules

    def class_chain(self, name: str) -> list[ClassSpec]:
        """``name``'s spec followed by its bases' (depth first), across contracts for dotted foreign bases."""
        out: list[ClassSpec] = []
        todo = [self._resolve_class(name)]
        while todo:
            spec = todo.pop(0)
            if spec is None or spec in out:
                continue
            out.append(spec)
            todo.extend(self._resolve_class(b) for b in spec.bases)
        return out

    def _resolve_class(self, name: str) -> ClassSpec | None:
        if name in self.classes:
            return self.classes[name]
        module, _, cls = name.rpartition(".")
        while module:
            other = contract_for_module(module)
            if other is not None and cls in other.classes:
                return other.classes[cls]
            module, _, head = module.rpartition(".")
            cls = f"{head}.{cls}"
        return None

    def find_method(self, class_name: str, method: str) -> CallableSpec | None:
        for spec in self.class_chain(class_name):
            if method in spec.methods:
                return spec.methods[method]
        return None

    def find_attribute(self, class_name: str, attr: str) -> str | None:
        found = self.find_attribute_with_owner(class_name, attr)
        return found[0] if found else None

    def find_attribute_with_owner(self, class_name: str, attr: str) -> tuple[str, Contract] | None:
        """``attr``'s type and the contract that declares it (types are names in that contract)."""
        for spec in self.class_chain(class_name):
            if attr in spec.attributes:
                return spec.attributes[attr], self._owner(spec)
        return None

    def find_method_with_owner(self, class_name: str, method: str) -> tuple[CallableSpec, Contract] | None:
        for spec in self.class_chain(class_name):
            if method in spec.methods:
                return spec.methods[method], self._owner(spec)
        return None

    def _owner(self, spec: ClassSpec) -> Contract:
        if spec.module == self.module:
            return self
        return contract_for_module(spec.module) or self

    def allowed_kwargs(self, class_name: str) -> frozenset[str] | str:
        keys: set[str] = set()
        for spec in self.class_chain(class_name):
            if spec.kwargs == "any":
                return "any"
            keys |= spec.kwargs
            keys |= set(spec.attributes)
        return frozenset(keys)

    def init_spec(self, class_name: str) -> CallableSpec:
        """The constructor of ``class_name`` (its own or inherited), accepting the kwargs of the whole chain."""
        chain = self.class_chain(class_name)
        if not chain:
            raise ContractError(f"{self.module}.{class_name} is in no contract")
        base_init = next((s.init for s in chain if s.init is not None), None)
        if base_init is None:
            base_init = _callable(chain[0].qualname, "()", chain[0].source)
        return replace(base_init, qualname=chain[0].qualname, kwargs=self.allowed_kwargs(class_name))

    def python_bases(self, class_name: str) -> list[str]:
        return [b for spec in self.class_chain(class_name) for b in spec.python_bases]


def parse_signature(text: str, qualname: str) -> tuple[inspect.Signature, str | None, bool]:
    """``"async (a, b: int = 1, *, c=None, **kwargs) -> T"`` -> (Signature, "T", is_async)."""
    body = text.strip()
    is_async = body.startswith("async ")
    if is_async:
        body = body[len("async ") :].strip()
    try:
        tree = ast.parse(f"def _f{body}: pass")
    except SyntaxError as exc:
        raise ContractError(f"{qualname}: bad signature {text!r}: {exc.msg}") from None
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    a = fn.args
    params: list[inspect.Parameter] = []
    positional = a.posonlyargs + a.args
    defaults = [_EMPTY] * (len(positional) - len(a.defaults)) + [ast.unparse(d) for d in a.defaults]
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(arg.arg, kind, default=default, annotation=_ann(arg)))
    if a.vararg:
        params.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL, annotation=_ann(a.vararg)))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY,
                                        default=_EMPTY if default is None else ast.unparse(default),
                                        annotation=_ann(arg)))
    if a.kwarg:
        params.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, annotation=_ann(a.kwarg)))
    returns = ast.unparse(fn.returns) if fn.returns is not None else None
    return inspect.Signature(params), returns, is_async


def _ann(arg: ast.arg):
    return ast.unparse(arg.annotation) if arg.annotation is not None else _EMPTY


def _callable(qualname: str, entry, default_source: str, kwargs_default=frozenset()) -> CallableSpec:
    if isinstance(entry, str):
        entry = {"sig": entry}
    if not isinstance(entry, dict) or "sig" not in entry:
        raise ContractError(f"{qualname}: expected a signature string or a table with 'sig'")
    unknown = set(entry) - {"sig", "source", "static", "kwargs", "note"}
    if unknown:
        raise ContractError(f"{qualname}: unknown keys {sorted(unknown)}")
    sig, returns, is_async = parse_signature(entry["sig"], qualname)
    kwargs = entry.get("kwargs", kwargs_default)
    return CallableSpec(qualname=qualname, signature=sig, returns=returns, is_async=is_async,
                        source=entry.get("source", default_source), static=bool(entry.get("static", False)),
                        kwargs=kwargs if kwargs == "any" else frozenset(kwargs), text=entry["sig"].strip())


def load_contract(path: Path | str) -> Contract:
    """Parse and validate one contract file."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    unknown = set(raw) - {"module", "standin", "doc", "sources", "functions", "classes", "enums", "constants",
                          "constant_sources", "submodules", "data", "note"}
    if unknown:
        raise ContractError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
    if "module" not in raw:
        raise ContractError(f"{path.name}: 'module' is missing")
    mod = raw["module"]
    c = Contract(module=mod, path=path, standin=bool(raw.get("standin", False)), sources=raw.get("sources", {}),
                 data=raw.get("data", {}))
    for name, entry in raw.get("functions", {}).items():
        src = entry.get("source", "") if isinstance(entry, dict) else ""
        c.functions[name] = _callable(f"{mod}.{name}", entry, src)
    for name, entry in raw.get("classes", {}).items():
        qual = f"{mod}.{name}"
        unknown = set(entry) - {"source", "bases", "python_bases", "init", "kwargs", "attributes", "methods", "note"}
        if unknown:
            raise ContractError(f"{qual}: unknown keys {sorted(unknown)}")
        src = entry.get("source", "")
        kw = entry.get("kwargs", [])
        spec = ClassSpec(qualname=qual, name=name, source=src, bases=list(entry.get("bases", [])), module=mod,
                         python_bases=list(entry.get("python_bases", [])),
                         kwargs=kw if kw == "any" else frozenset(kw), attributes=dict(entry.get("attributes", {})))
        if "init" in entry:
            spec.init = _callable(qual, entry["init"], src, spec.kwargs)
        for m, m_entry in entry.get("methods", {}).items():
            spec.methods[m] = _callable(f"{qual}.{m}", m_entry, src)
        c.classes[name] = spec
    for name, entry in raw.get("enums", {}).items():
        c.enums[name] = EnumSpec(qualname=f"{mod}.{name}", name=name, members=list(entry["members"]),
                                 source=entry.get("source", ""))
    c.constants = dict(raw.get("constants", {}))
    c.constant_sources = dict(raw.get("constant_sources", {}))
    c.submodules = set(raw.get("submodules", []))
    for dotted in list(c.functions) + list(c.classes) + list(c.enums):
        parts = dotted.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            c.submodules.add(".".join(parts[:i]))
    return c


def validate_contract(c: Contract) -> list[str]:
    """Problems of a parsed contract: entries without a checkable source, bases that resolve nowhere."""
    problems = []

    def check_source(what: str, src: str) -> None:
        if not src:
            problems.append(f"{c.file}: {what} has no source")
            return
        head = re.split(r"[\s;,]", src.strip())[0]
        if not (head.startswith("http") or head in c.sources):
            problems.append(f"{c.file}: {what}: source {src!r} starts with neither a URL nor one of {sorted(c.sources)}")

    for f in c.functions.values():
        check_source(f.qualname, f.source)
    for spec in c.classes.values():
        check_source(spec.qualname, spec.source)
        for m in spec.methods.values():
            check_source(m.qualname, m.source)
        for base in spec.bases:
            if c._resolve_class(base) is None:
                problems.append(f"{c.file}: {spec.qualname}: base {base!r} is in no contract")
    for e in c.enums.values():
        check_source(e.qualname, e.source)
    for name in c.constants:
        check_source(f"{c.module}.{name}", c.constant_sources.get(name, c.constant_sources.get("*", "")))
    return problems


@cache
def all_contracts(directory: str = str(CONTRACTS_DIR)) -> tuple[Contract, ...]:
    return tuple(load_contract(p) for p in sorted(Path(directory).glob("*.toml")))


def contract_for_module(module: str, directory: str = str(CONTRACTS_DIR)) -> Contract | None:
    for c in all_contracts(directory):
        if c.module == module:
            return c
    return None


def contract_file_for(module: str, directory: str = str(CONTRACTS_DIR)) -> Path:
    c = contract_for_module(module, directory)
    if c is None:
        raise ContractError(f"no contract in {directory} for module {module}")
    return c.path
