"""Build a test-only stand-in module from a contract: every name, signature and keyword comes from the contract.

``install_standin(globals(), "omni_ui.toml", behaviour)`` fills a package's namespace with:

* one class per contract class (constructor and methods check each call against the contract signature and its
  allowed ``**kwargs``; attributes outside the contract raise), one function per contract function (dotted names
  become submodules: ``create.render_product``), enums, constants;
* a module ``__getattr__`` that raises :class:`ContractAttributeError` for any other name;
* ``__recorder__``: every call made, for tests that assert what was built; ``__contract__``: the parsed contract.

Behaviour that tests need (value models that hold a value, a window's frame that runs its build function,
Replicator's writer registry) lives in small hand-written ``_behaviour`` modules next to each stand-in; every public
name they define must be in the contract, and their methods are wrapped with the same checks.

Each violation is raised where it happens *and* appended to :data:`violations`, so the harness fails the test even
when the caller swallowed the exception (a ``try/except`` in our code, a build function run by the stand-in).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .contract import CONTRACTS_DIR as _CONTRACTS_DIR
from .contract import (
    CallableSpec,
    Contract,
    ContractAttributeError,
    ContractError,
    ContractViolation,
    contract_for_module,
    load_contract,
)

violations: list[str] = []


def violation(exc: Exception) -> Exception:
    violations.append(str(exc))
    return exc


class WeakValue:
    """A recorded object, held weakly so the record never keeps an extension (or its callbacks) alive.

    Call it to get the object (None once collected), as with ``weakref.ref``; equality compares the object."""

    __slots__ = ("_ref", "_repr")

    def __init__(self, ref, text: str):
        self._ref = ref
        self._repr = text

    def __call__(self):
        return self._ref()

    def __eq__(self, other):
        target = self._ref()
        return target is other or (target is not None and target == other)

    def __hash__(self):
        return id(self)

    def __repr__(self) -> str:
        return f"<weak {self._repr}>"


def weaken(value, depth: int = 0):
    """``value`` with every object that could reference caller state replaced by a :class:`WeakValue`."""
    if value is None or isinstance(value, (str, bytes, int, float, bool, complex)):
        return value
    if isinstance(value, (list, tuple)) and depth < 4:
        items = [weaken(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and depth < 4:
        return {k: weaken(v, depth + 1) for k, v in value.items()}
    try:
        text = repr(value)
    except Exception:
        text = object.__repr__(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    try:
        ref = weakref.WeakMethod(value) if isinstance(value, types.MethodType) else weakref.ref(value)
    except TypeError:
        return text  # not weak-referenceable (e.g. a plain tuple subclass): keep its text only
    return WeakValue(ref, text)


@dataclass
class Call:
    """One recorded call. ``args``/``kwargs`` keep plain values as they were and objects as WeakValue."""

    name: str  # "Window", "Window.deferred_dock_in", "create.render_product"
    args: tuple
    kwargs: dict
    _target: object = None
    _result: object = None

    @property
    def target(self):
        return self._target() if isinstance(self._target, WeakValue) else self._target

    @property
    def result(self):
        return self._result() if isinstance(self._result, WeakValue) else self._result

    @result.setter
    def result(self, value) -> None:
        self._result = weaken(value)


class Recorder:
    """Calls made to one stand-in module, in order (objects held weakly)."""

    def __init__(self, module: str):
        self.module = module
        self.calls: list[Call] = []

    def record(self, name: str, args: tuple, kwargs: dict, target: object = None) -> Call:
        call = Call(name, weaken(tuple(args)), weaken(dict(kwargs)), weaken(target) if target is not None else None)
        self.calls.append(call)
        return call

    def find(self, name: str) -> list[Call]:
        """Calls whose name is ``name`` ("Window.deferred_dock_in", or just "deferred_dock_in")."""
        return [c for c in self.calls if c.name == name or c.name.endswith("." + name)]

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def clear(self) -> None:
        self.calls.clear()


async def next_update() -> None:
    """One Kit update (the stand-ins' async calls take a frame, as rendering would)."""
    try:
        import omni.kit.app

        await omni.kit.app.get_app().next_update_async()
    except ImportError:
        await asyncio.sleep(0)


class _EnumMember(int):
    def __new__(cls, value: int, name: str, owner: str):
        obj = int.__new__(cls, value)
        obj.name = name
        obj._owner = owner
        return obj

    def __repr__(self) -> str:
        return f"<{self._owner}.{self.name}: {int(self)}>"

    __str__ = __repr__


class _EnumMeta(type):
    def __getattr__(cls, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise violation(ContractAttributeError(
            f"API contract: {cls.__qualname_full__} has no member '{name}' in the contract {cls.__contract_file__}; "
            f"members: {', '.join(cls.__members__)}"))

    def __iter__(cls):
        return iter(cls.__members__.values())


class StandinObject:
    """Base of every generated class."""

    __contract__: Contract
    __contract_class__: str
    __recorder__: Recorder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        cls = type(self)
        typed = cls.__contract__.find_attribute_with_owner(cls.__contract_class__, name)
        if typed is not None:
            value = default_value(typed[1], typed[0], self)
            object.__setattr__(self, name, value)
            return value
        where = f"{cls.__contract__.module}.{cls.__contract_class__}"
        if getattr(cls, "__standin_generated__", None) is not cls:  # our own subclass: a plain missing attribute
            raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}' (nor has {where} in the "
                                 f"contract {cls.__contract__.file})")
        raise violation(ContractAttributeError(
            f"API contract: {where} has no attribute '{name}' in the contract {cls.__contract__.file}"))

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if not name.startswith("_") and getattr(cls, "__standin_generated__", None) is cls:
            c = cls.__contract__
            if c.find_attribute(cls.__contract_class__, name) is None and not _has_class_attr(cls, name):
                raise violation(ContractAttributeError(
                    f"API contract: cannot set '{name}' on {c.module}.{cls.__contract_class__}: not an attribute in "
                    f"the contract {c.file}"))
        object.__setattr__(self, name, value)


def _has_class_attr(cls: type, name: str) -> bool:
    return any(name in k.__dict__ for k in cls.__mro__ if k is not object)


def default_value(contract: Contract, typ: str | None, owner: object = None) -> Any:
    """An object of contract type ``typ`` (for generic return values and unset attributes)."""
    if typ is None or typ in ("None", "NoneType"):
        return None
    t = typ.strip().strip("'\"")
    if t == "self":
        return owner
    simple = {"bool": False, "int": 0, "float": 0.0, "str": "", "bytes": b""}
    if t in simple:
        return simple[t]
    head = t.split("[", 1)[0].split("|", 1)[0].strip()
    if head in ("list", "List", "Sequence"):
        return []
    if head in ("dict", "Dict", "Mapping"):
        return {}
    if head in ("tuple", "Tuple"):
        return ()
    cls = resolve_class(contract, head)
    if cls is not None:
        return new_instance(cls)
    return None


def resolve_class(contract: Contract, name: str) -> type | None:
    """The generated stand-in class for contract class ``name`` (local or "omni.ui.Window")."""
    module = sys.modules.get(contract.module)
    if name in contract.classes and module is not None:
        obj = module
        for part in name.split("."):
            obj = getattr(obj, part, None) if not isinstance(obj, types.ModuleType) else obj.__dict__.get(part)
            if obj is None:
                return None
        return obj if isinstance(obj, type) else None
    mod, _, cls_name = name.rpartition(".")
    if mod and contract_for_module(mod) is not None:
        try:
            return importlib.import_module(mod).__dict__.get(cls_name)
        except ImportError:
            return None
    return None


def new_instance(cls: type) -> Any:
    """An instance built without a constructor call (what an API returns, not what our code constructs)."""
    obj = cls.__new__(cls)
    setup = getattr(obj, "_standin_setup", None)
    if setup is not None:
        setup()
    return obj


def _checked(spec: CallableSpec, contract: Contract, recorder: Recorder, rec_name: str, impl: Callable | None,
             method: bool) -> Callable:
    def call(*args, **kwargs):
        target = None
        if method:
            target, args = args[0], args[1:]
        try:
            spec.check_call(args, kwargs, contract.file)
        except ContractViolation as exc:
            raise violation(exc) from None
        record = recorder.record(rec_name, args, kwargs, target)
        if impl is not None:
            result = impl(target, *args, **kwargs) if method else impl(*args, **kwargs)
        elif spec.is_async:
            result = _async_default(contract, spec, target)
        else:
            result = default_value(contract, spec.returns, target)
        record.result = result
        return result

    call.__name__ = spec.name
    call.__qualname__ = spec.qualname
    call.__doc__ = f"Stand-in for {spec.qualname}{spec.text} [{spec.source}]"
    call.__signature__ = spec.signature
    return call


async def _async_default(contract: Contract, spec: CallableSpec, target: object) -> Any:
    await next_update()
    return default_value(contract, spec.returns, target)


def _make_init(contract: Contract, name: str, recorder: Recorder) -> Callable:
    spec = contract.init_spec(name)

    def __init__(self, *args, **kwargs):
        try:
            bound = spec.check_call(args, kwargs, contract.file)
        except ContractViolation as exc:
            raise violation(exc) from None
        recorder.record(name, args, kwargs, self).result = self
        setup = getattr(self, "_standin_setup", None)
        if setup is not None:
            setup()
        for key, value in bound.arguments.items():
            p = spec.signature.parameters[key]
            if p.kind is p.VAR_KEYWORD:
                for k, v in value.items():
                    object.__setattr__(self, k, v)
            elif p.kind is not p.VAR_POSITIONAL:
                object.__setattr__(self, key, value)
        hook = getattr(self, "_standin_init", None)
        if hook is not None:
            hook(bound)

    __init__.__qualname__ = f"{name}.__init__"
    __init__.__signature__ = spec.signature
    return __init__


class _StandinModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise violation(ContractAttributeError(
            f"API contract: {self.__name__} has no '{name}' in the contract {self.__contract__.file}"))


def install_standin(namespace: dict, contract_file: str, behaviour: types.ModuleType | None = None) -> Contract:
    """Fill a stand-in package's namespace from ``tests/kit/contracts/<contract_file>``."""
    contract = load_contract(_CONTRACTS_DIR / contract_file)
    if contract.module != namespace["__name__"]:
        raise ContractError(f"{contract_file} describes {contract.module}, not {namespace['__name__']}")
    recorder = Recorder(contract.module)
    b_classes: dict[str, type] = dict(getattr(behaviour, "CLASSES", {}))
    b_functions: dict[str, Callable] = dict(getattr(behaviour, "FUNCTIONS", {}))
    for key in list(b_classes) + list(b_functions):
        if key not in contract.classes and key not in contract.functions:
            raise ContractError(f"stand-in behaviour for {contract.module}.{key} is not in the contract {contract.file}")

    namespace["__contract__"] = contract
    namespace["__recorder__"] = recorder
    namespace["__standin__"] = True

    def container(dotted: str) -> dict:
        if not dotted:
            return namespace
        parts = dotted.split(".")
        parent = namespace
        for i in range(len(parts)):
            sub_name = f"{contract.module}.{'.'.join(parts[: i + 1])}"
            sub = parent.get(parts[i])
            if sub is None:
                sub = _StandinModule(sub_name, f"Stand-in for {sub_name}")
                sub.__contract__ = contract
                sys.modules[sub_name] = sub
                parent[parts[i]] = sub
            parent = sub.__dict__
        return parent

    for sub in sorted(contract.submodules):
        container(sub)

    for name, e in contract.enums.items():
        prefix, _, short = name.rpartition(".")
        members = {m: _EnumMember(i, m, e.qualname) for i, m in enumerate(e.members)}
        cls = _EnumMeta(short, (), {"__members__": members, "__qualname_full__": e.qualname,
                                    "__contract_file__": contract.file, "__module__": contract.module,
                                    "__doc__": f"Stand-in enum {e.qualname} [{e.source}]", **members})
        container(prefix)[short] = cls

    for name, value in contract.constants.items():
        prefix, _, short = name.rpartition(".")
        container(prefix)[short] = value

    built: dict[str, type] = {}

    def build(name: str) -> type:
        if name in built:
            return built[name]
        spec = contract.classes[name]
        bases: list[type] = []
        b_cls = b_classes.get(name)
        if b_cls is not None and issubclass(b_cls, BaseException):
            built[name] = b_cls  # exceptions are used as written (checked against the contract by name only)
            prefix, _, short = name.rpartition(".")
            container(prefix)[short] = b_cls
            return b_cls
        if b_cls is not None:
            bases.append(b_cls)
        for base in spec.bases:
            if base in contract.classes:
                bases.append(build(base))
            else:
                mod, _, cls_name = base.rpartition(".")
                bases.append(getattr(importlib.import_module(mod), cls_name))
        for pb in spec.python_bases:
            mod, _, cls_name = pb.rpartition(".")
            bases.append(getattr(importlib.import_module(mod or "builtins"), cls_name))
        if not any(issubclass(b, StandinObject) for b in bases):
            bases.append(StandinObject)
        ns: dict[str, Any] = {
            "__module__": contract.module, "__qualname__": name, "__contract__": contract,
            "__contract_class__": name, "__recorder__": recorder,
            "__doc__": f"Stand-in for {spec.qualname} [{spec.source}]",
        }
        if b_cls is not None and "__init__" in b_cls.__dict__:
            raise ContractError(f"stand-in behaviour {contract.module}.{name} defines __init__; use the hooks "
                                "_standin_setup(self) / _standin_init(self, bound) instead")
        ns["__init__"] = _make_init(contract, name, recorder)
        for m, mspec in spec.methods.items():
            impl = b_cls.__dict__.get(m) if b_cls is not None else None
            if isinstance(impl, staticmethod):
                impl = impl.__func__
            fn = _checked(mspec, contract, recorder, f"{name}.{m}", impl, method=not mspec.static)
            ns[m] = staticmethod(fn) if mspec.static else fn
        if b_cls is not None:
            for attr, value in b_cls.__dict__.items():
                if attr.startswith("_") or attr in ns:
                    continue
                inherited = contract.find_method(name, attr)
                if inherited is not None and callable(value) and not isinstance(value, property):
                    ns[attr] = _checked(inherited, contract, recorder, f"{name}.{attr}", value, method=True)
                elif inherited is None and contract.find_attribute(name, attr) is None:
                    raise ContractError(f"stand-in behaviour {contract.module}.{name}.{attr} is not in the contract "
                                        f"{contract.file}")
        short = name.rpartition(".")[2]
        cls = type(short, tuple(bases), ns)
        cls.__standin_generated__ = cls
        built[name] = cls
        prefix = name.rpartition(".")[0]
        container(prefix)[short] = cls
        return cls

    for name in contract.classes:
        build(name)

    for name, fspec in contract.functions.items():
        prefix, _, short = name.rpartition(".")
        container(prefix)[short] = _checked(fspec, contract, recorder, name, b_functions.get(name), method=False)

    def __getattr__(name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise violation(ContractAttributeError(
            f"API contract: {contract.module} has no '{name}' in the contract {contract.file}"))

    namespace["__getattr__"] = __getattr__
    return contract


def signature_of(obj: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None
