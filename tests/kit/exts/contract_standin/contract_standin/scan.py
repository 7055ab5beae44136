"""Static check: every ``omni.*`` / ``carb`` name our source uses, and every keyword it passes, is in a contract.

Standard library only (runs in Python 3.11 pytest). It follows what a reader can follow without running the code:

* imports (``import omni.ui as ui``, ``from omni.kit.menu.utils import MenuItemDescription``, ``import carb.settings``);
* dotted names below them (``rep.orchestrator.step_async``), checked against the contract of the longest module
  prefix; a module no contract covers is itself a finding;
* calls: keywords and positional counts against the contract signature; the return annotation types the result,
  so ``omni.usd.get_context().get_stage()`` and ``get_app().get_extension_manager().get_extension_path`` resolve;
* local variables and ``self.<attr>`` assigned from such values (``win = ui.Window(...)``, ``self._win = ...``),
  ``with ... as x``;
* our classes derived from contract classes (``class Ext(omni.ext.IExt, MenuHelperExtensionFull)``,
  ``class W(rep.Writer)``, tests deriving ``omni.kit.test.AsyncTestCase``): ``self.x`` that the class does not define
  itself must come from the contract class (or its ``python_bases``, e.g. ``unittest.TestCase``).

Values it cannot type (function parameters, loop variables, containers) are not checked: the stand-ins catch those
at run time in the Kit tier.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from .contract import CallableSpec, Contract, all_contracts

ROOTS = ("omni", "carb")


@dataclass(frozen=True)
class ModuleRef:
    dotted: str


@dataclass(frozen=True)
class ClassRef:
    contract: Contract
    name: str


@dataclass(frozen=True)
class Instance:
    contract: Contract
    name: str


@dataclass(frozen=True)
class EnumRef:
    contract: Contract
    name: str


@dataclass(frozen=True)
class FuncRef:
    contract: Contract
    spec: CallableSpec
    owner: str | None = None  # class name for methods (resolves a "self" return)


@dataclass(frozen=True)
class OurSubclass:
    """``self`` inside our class derived from contract classes; ``own`` = names the class defines itself."""

    bases: tuple  # tuple[ClassRef, ...]
    own: frozenset
    has_other_bases: bool


@dataclass
class Finding:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class _Scope:
    names: dict = field(default_factory=dict)


class Scanner:
    def __init__(self, contracts: tuple[Contract, ...] | None = None):
        self.contracts = contracts if contracts is not None else all_contracts()
        self.findings: list[Finding] = []
        self.uses: set[str] = set()  # every contract name resolved (for reporting)
        self.path = "<source>"
        self._class_attrs: dict | None = None  # types of self.<attr> in the class being scanned

    # ------------------------------------------------------------------ lookup helpers

    def contract_for(self, dotted: str) -> Contract | None:
        best = None
        for c in self.contracts:
            if (dotted == c.module or dotted.startswith(c.module + ".")) and (best is None or len(c.module) > len(best.module)):
                best = c
        return best

    def is_module_prefix(self, dotted: str) -> bool:
        return any(c.module.startswith(dotted + ".") or c.module == dotted for c in self.contracts)

    def resolve_dotted(self, dotted: str, node: ast.AST):
        """A full dotted name (``omni.replicator.core.create.render_product``) -> symbol, or a finding."""
        c = self.contract_for(dotted)
        if c is None:
            if self.is_module_prefix(dotted):
                return ModuleRef(dotted)
            self.report(node, f"{dotted}: no API contract covers this module (add tests/kit/contracts/*.toml)")
            return None
        if dotted == c.module:
            return ModuleRef(dotted)
        rest = dotted[len(c.module) + 1:]
        if rest in c.functions:
            self.uses.add(dotted)
            return FuncRef(c, c.functions[rest])
        if rest in c.classes:
            self.uses.add(dotted)
            return ClassRef(c, rest)
        if rest in c.enums:
            self.uses.add(dotted)
            return EnumRef(c, rest)
        if rest in c.constants:
            self.uses.add(dotted)
            return None
        if rest in c.submodules:
            return ModuleRef(dotted)
        if self.is_module_prefix(dotted):
            return ModuleRef(dotted)
        self.report(node, f"{dotted} is not in the contract {c.file}")
        return None

    def class_ref(self, contract: Contract, type_name: str | None):
        """A return/attribute annotation -> a ClassRef (local or "omni.ext.ExtensionManager"), else None."""
        if not type_name:
            return None
        t = type_name.strip().strip("'\"")
        if t in contract.classes:
            return ClassRef(contract, t)
        other = self.contract_for(t)
        if other is not None and t.startswith(other.module + "."):
            rest = t[len(other.module) + 1:]
            if rest in other.classes:
                return ClassRef(other, rest)
        return None

    def report(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), message))

    # ------------------------------------------------------------------ scanning

    def scan_file(self, path: Path, display: str | None = None) -> None:
        self.scan_source(path.read_text(), display or str(path))

    def scan_source(self, source: str, display: str = "<source>") -> None:
        self.path = display
        tree = ast.parse(source, display)
        module_scope = _Scope()
        self._imports(tree, module_scope)
        self._block(tree.body, module_scope, None)

    def _imports(self, tree: ast.Module, scope: _Scope) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] not in ROOTS:
                        continue
                    self.resolve_dotted(alias.name, node)
                    if alias.asname:
                        scope.names[alias.asname] = ModuleRef(alias.name)
                    else:
                        root = alias.name.split(".")[0]
                        scope.names[root] = ModuleRef(root)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                if node.module.split(".")[0] not in ROOTS:
                    continue
                for alias in node.names:
                    if alias.name == "*":
                        self.report(node, f"from {node.module} import *: name the contract entries you use")
                        continue
                    sym = self.resolve_dotted(f"{node.module}.{alias.name}", node)
                    scope.names[alias.asname or alias.name] = sym

    def _block(self, body: list[ast.stmt], scope: _Scope, self_sym) -> None:
        for stmt in body:
            self._stmt(stmt, scope, self_sym)

    def _stmt(self, stmt: ast.stmt, scope: _Scope, self_sym) -> None:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return
        if isinstance(stmt, ast.ClassDef):
            self._class(stmt, scope)
            return
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in stmt.decorator_list:
                self.expr(d, scope, self_sym)
            inner = _Scope(dict(scope.names))
            for arg in [*stmt.args.posonlyargs, *stmt.args.args, *stmt.args.kwonlyargs]:
                inner.names.pop(arg.arg, None)
            self._block(stmt.body, inner, self_sym)
            return
        if isinstance(stmt, ast.Assign):
            sym = self.expr(stmt.value, scope, self_sym)
            for target in stmt.targets:
                self._bind(target, sym, scope, self_sym)
            return
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._bind(stmt.target, self.expr(stmt.value, scope, self_sym), scope, self_sym)
            return
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                sym = self.expr(item.context_expr, scope, self_sym)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, sym, scope, self_sym)
            self._block(stmt.body, scope, self_sym)
            return
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                self._stmt(child, scope, self_sym)
            elif isinstance(child, ast.expr):
                self.expr(child, scope, self_sym)
            elif isinstance(child, ast.excepthandler):
                if child.type is not None:
                    self.expr(child.type, scope, self_sym)
                if child.name:
                    scope.names.pop(child.name, None)
                self._block(child.body, scope, self_sym)
            elif isinstance(child, (ast.comprehension, ast.keyword, ast.withitem, ast.match_case, ast.arguments)):
                for sub in ast.walk(child):
                    if isinstance(sub, ast.expr):
                        self.expr(sub, scope, self_sym, shallow=True)

    def _bind(self, target: ast.expr, sym, scope: _Scope, self_sym) -> None:
        if isinstance(target, ast.Name):
            if isinstance(sym, (Instance, ClassRef, ModuleRef, EnumRef)):
                scope.names[target.id] = sym
            else:
                scope.names.pop(target.id, None)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            if isinstance(sym, Instance) and self._class_attrs is not None:
                self._class_attrs[target.attr] = sym
        else:
            self.expr(target, scope, self_sym)

    def _class(self, node: ast.ClassDef, scope: _Scope) -> None:
        bases, other = [], False
        for b in node.bases:
            sym = self.expr(b, scope, None)
            if isinstance(sym, ClassRef):
                bases.append(sym)
            else:
                other = True
        for kw in node.keywords:
            self.expr(kw.value, scope, None)
        own = set()
        for item in ast.walk(node):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(item.name)
            elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
                own.add(item.id)
            elif (isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store) and isinstance(item.value, ast.Name)
                  and item.value.id == "self"):
                own.add(item.attr)
        self_sym = OurSubclass(tuple(bases), frozenset(own), other) if bases else None
        saved = self._class_attrs
        self._class_attrs = {}
        # two passes: the first learns the types of self.<attr> assignments, the second checks their uses
        findings = len(self.findings)
        self._block(node.body, _Scope(dict(scope.names)), self_sym)
        del self.findings[findings:]
        self._block(node.body, _Scope(dict(scope.names)), self_sym)
        self._class_attrs = saved

    # ------------------------------------------------------------------ expressions

    def expr(self, node: ast.expr, scope: _Scope, self_sym, shallow: bool = False):
        if isinstance(node, ast.Name):
            if node.id == "self" and self_sym is not None:
                return self_sym
            return scope.names.get(node.id)
        if isinstance(node, ast.Attribute):
            if (isinstance(node.value, ast.Name) and node.value.id == "self" and self._class_attrs
                    and node.attr in self._class_attrs):
                return self._class_attrs[node.attr]
            base = self.expr(node.value, scope, self_sym)
            return self.attribute(base, node.attr, node)
        if isinstance(node, ast.Call):
            func = self.expr(node.func, scope, self_sym)
            for a in node.args:
                self.expr(a.value if isinstance(a, ast.Starred) else a, scope, self_sym)
            for kw in node.keywords:
                self.expr(kw.value, scope, self_sym)
            if isinstance(node.func, ast.Name) and node.func.id == "super" and isinstance(self_sym, OurSubclass):
                return Instance(self_sym.bases[0].contract, self_sym.bases[0].name) if self_sym.bases else None
            return self.call(func, node)
        if isinstance(node, ast.Await):
            return self.expr(node.value, scope, self_sym)  # an async contract function's annotation is its result
        if isinstance(node, ast.Lambda):
            inner = _Scope(dict(scope.names))
            for arg in node.args.args:
                inner.names.pop(arg.arg, None)
            self.expr(node.body, inner, self_sym)
            return None
        if not shallow:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, scope, self_sym)
                elif isinstance(child, (ast.comprehension, ast.keyword)):
                    for sub in ast.iter_child_nodes(child):
                        if isinstance(sub, ast.expr):
                            self.expr(sub, scope, self_sym)
        return None

    def attribute(self, base, attr: str, node: ast.AST):
        if base is None:
            return None
        if isinstance(base, ModuleRef):
            return self.resolve_dotted(f"{base.dotted}.{attr}", node)
        if attr.startswith("__") and attr.endswith("__"):
            if attr == "__init__" and isinstance(base, Instance):
                return FuncRef(base.contract, base.contract.init_spec(base.name), base.name)
            return None
        if isinstance(base, EnumRef):
            if attr not in base.contract.enums[base.name].members:
                self.report(node, f"{base.contract.module}.{base.name}.{attr} is not in the contract {base.contract.file}")
            return None
        if isinstance(base, (ClassRef, Instance)):
            sym = self.attribute_quiet(ClassRef(base.contract, base.name), attr)
            if sym is False:
                c = base.contract
                self.report(node, f"{c.module}.{base.name}.{attr} is not in the contract {c.file}")
                return None
            return sym
        if isinstance(base, OurSubclass):
            if attr in base.own or attr.startswith("_") or base.has_other_bases:
                return None
            for ref in base.bases:
                sym = self.attribute_quiet(ref, attr)
                if sym is not False:
                    return sym
            names = ", ".join(f"{r.contract.module}.{r.name}" for r in base.bases)
            self.report(node, f"self.{attr}: not defined by the class, and not in the contract of its base ({names})")
            return None
        return None

    def attribute_quiet(self, ref: ClassRef, attr: str):
        """Like attribute() on an instance of ``ref``, but returns False instead of reporting a miss."""
        c, name = ref.contract, ref.name
        found = c.find_method_with_owner(name, attr)
        if found is not None:
            method, owner = found
            self.uses.add(f"{c.module}.{name}.{attr}")
            return FuncRef(owner if method.returns != "self" else c, method, name)
        typed = c.find_attribute_with_owner(name, attr)
        if typed is not None:
            self.uses.add(f"{c.module}.{name}.{attr}")
            ref2 = self.class_ref(typed[1], typed[0])
            return Instance(ref2.contract, ref2.name) if ref2 else None
        if any(hasattr(_python_class(pb), attr) for pb in c.python_bases(name)):
            return None
        return False

    def call(self, func, node: ast.Call):
        if isinstance(func, ClassRef):
            spec = func.contract.init_spec(func.name)
            self.check_arguments(spec, node, func.contract)
            return Instance(func.contract, func.name)
        if isinstance(func, FuncRef):
            self.check_arguments(func.spec, node, func.contract)
            ret = func.spec.returns
            if ret == "self" and func.owner:
                return Instance(func.contract, func.owner)
            ref = self.class_ref(func.contract, ret)
            return Instance(ref.contract, ref.name) if ref else None
        return None

    def check_arguments(self, spec: CallableSpec, node: ast.Call, contract: Contract) -> None:
        for kw in node.keywords:
            if kw.arg is not None and not spec.accepts_keyword(kw.arg):
                self.report(node, f"{spec.qualname}(): keyword '{kw.arg}' is not in the contract {contract.file} "
                                  f"(signature {spec.text})")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(kw.arg is None for kw in node.keywords):
            return
        params = list(spec.signature.parameters.values())
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            return
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(node.args) > len(positional):
            self.report(node, f"{spec.qualname}(): {len(node.args)} positional arguments, the contract takes at most "
                              f"{len(positional)} (signature {spec.text})")


def _python_class(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module or "builtins"), name)


def scan_paths(paths: list[Path], root: Path | None = None) -> tuple[list[Finding], set[str]]:
    scanner = Scanner()
    for path in paths:
        scanner.scan_file(path, str(path.relative_to(root)) if root else str(path))
    return scanner.findings, scanner.uses
