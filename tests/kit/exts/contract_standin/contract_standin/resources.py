"""A registry of subscriptions and other live resources, so the Kit tier can prove an extension released its own.

Two kinds of entries:

* stand-in resources (an ``omni.ui.Window`` not yet destroyed, menu items not removed, a Replicator writer still
  registered or attached, an annotator still attached, a render product not destroyed), tracked by the stand-ins;
* real kernel subscriptions, tracked by wrapping the kernel's own factories (``instrument_kernel``):
  ``IEventDispatcher.observe_event`` (Events 2.0 observers), ``IEventStream.create_subscription_to_pop/push``
  (legacy update/stage streams) and ``ISettings.subscribe_to_node/tree_change_events``.

Each entry keeps the Python stack that created it, so the harness attributes it to an extension by folder, and
(for event subscriptions) counts how often its callback ran, so "still fires after on_shutdown" is visible even
where a subscription object's liveness is not.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)


@dataclass(eq=False)
class Resource:
    kind: str  # "event observer", "update subscription", "settings subscription", "omni.ui.Window", ...
    description: str
    stack: list[tuple[str, int, str]]  # (filename, line, function), innermost first
    ref: Callable[[], object] | None = None  # weakref to the owning object (None: liveness by `released` only)
    alive_fn: Callable[[object], bool] | None = None  # extra check on the live object (e.g. "guard not reset")
    released: bool = False
    calls: int = 0  # callback invocations (event subscriptions)
    extra: dict = field(default_factory=dict)

    def is_live(self) -> bool:
        if self.released:
            return False
        if self.ref is None:
            return True
        obj = self.ref()
        if obj is None:
            return False
        if self.alive_fn is not None:
            try:
                return bool(self.alive_fn(obj))
            except Exception:
                return False
        return True

    def frames_under(self, folder: str) -> list[tuple[str, int, str]]:
        folder = str(Path(folder).resolve())
        return [f for f in self.stack if _is_under(f[0], folder)]

    def origin(self, folder: str | None = None) -> str:
        """Where it was created: the innermost frame under ``folder`` (or outside the stand-ins)."""
        frames = self.frames_under(folder) if folder else [f for f in self.stack if not _is_standin_frame(f[0])]
        if not frames:
            frames = self.stack
        if not frames:
            return "<unknown>"
        f = frames[0]
        return f"{f[0]}:{f[1]} in {f[2]}()"


_lock = threading.Lock()
_resources: list[Resource] = []
_by_id: dict[int, Resource] = {}
_installed = False


def _is_under(filename: str, folder: str) -> bool:
    try:
        return str(Path(filename).resolve()).startswith(folder.rstrip("/") + "/")
    except (OSError, ValueError):
        return False


def _is_standin_frame(filename: str) -> bool:
    return filename.startswith(_HERE) or "/tests/kit/exts/" in filename


def _stack(skip: int = 2, limit: int = 40) -> list[tuple[str, int, str]]:
    frames = []
    f = sys._getframe(skip)
    while f is not None and len(frames) < limit:
        frames.append((f.f_code.co_filename, f.f_lineno, f.f_code.co_name))
        f = f.f_back
    return frames


def track(kind: str, description: str, obj: object = None, alive_fn: Callable[[object], bool] | None = None,
          weak: bool = True, key: object = None) -> Resource:
    """Register a live resource created now; ``release(key or obj)`` marks it gone."""
    ref = None
    if obj is not None and weak:
        try:
            ref = weakref.ref(obj)
        except TypeError:
            ref = None
    res = Resource(kind=kind, description=description, stack=_stack(), ref=ref, alive_fn=alive_fn)
    with _lock:
        if len(_resources) > 512:
            _resources[:] = [r for r in _resources if r.is_live()]
            live_ids = {id(r) for r in _resources}
            for k in [k for k, r in _by_id.items() if id(r) not in live_ids]:
                del _by_id[k]
        _resources.append(res)
        _by_id[id(key if key is not None else obj)] = res
    return res


def release(key: object) -> None:
    with _lock:
        res = _by_id.pop(id(key), None)
    if res is not None:
        res.released = True


def find(key: object) -> Resource | None:
    return _by_id.get(id(key))


def live(folder: str | None = None) -> list[Resource]:
    """Resources still live; with ``folder``, only those created by code in that folder."""
    with _lock:
        items = list(_resources)
    out = [r for r in items if r.is_live()]
    if folder is not None:
        out = [r for r in out if r.frames_under(folder)]
    return out


def all_resources() -> list[Resource]:
    with _lock:
        return list(_resources)


# ---------------------------------------------------------------- real kernel subscriptions


def _wrap_callback(fn: Callable, res_box: list) -> Callable:
    def callback(*args, **kwargs):
        if res_box:
            res_box[0].calls += 1
        return fn(*args, **kwargs)

    callback.__wrapped__ = fn
    return callback


def _guard_alive(guard) -> bool:
    guard.name  # noqa: B018 -- raises RuntimeError("Observer not valid") once reset
    return True


def instrument_kernel() -> None:
    """Wrap the kernel's subscription factories (idempotent). Call before the extension under test starts."""
    global _installed
    if _installed:
        return
    import carb.eventdispatcher
    import carb.events
    import carb.settings

    dispatcher_cls = carb.eventdispatcher.IEventDispatcher
    orig_observe = dispatcher_cls.observe_event

    def observe_event(self, *args, **kwargs):
        box: list = []
        names = ["order", "event_name", "on_event", "filter", "observer_name"]
        bound = dict(zip(names, args, strict=False))
        bound.update(kwargs)
        if callable(bound.get("on_event")):
            bound["on_event"] = _wrap_callback(bound["on_event"], box)
        guard = orig_observe(self, **bound)
        res = track("event observer", f"observe_event(event_name={bound.get('event_name')!r}, "
                    f"observer_name={bound.get('observer_name', '<python>')!r})", guard, alive_fn=_guard_alive)
        res.extra["event_name"] = bound.get("event_name")
        box.append(res)
        return guard

    dispatcher_cls.observe_event = observe_event

    stream_cls = carb.events.IEventStream
    for method in ("create_subscription_to_pop", "create_subscription_to_push"):
        for by_type in (False, True):
            name = method + ("_by_type" if by_type else "")
            orig = getattr(stream_cls, name)

            def factory(self, *args, _orig=orig, _name=name, _by_type=by_type, **kwargs):
                box: list = []
                args = list(args)
                fn_index = 1 if _by_type else 0
                if "fn" in kwargs:
                    kwargs["fn"] = _wrap_callback(kwargs["fn"], box)
                elif len(args) > fn_index:
                    args[fn_index] = _wrap_callback(args[fn_index], box)
                sub = _orig(self, *args, **kwargs)
                try:
                    stream = self.name
                except Exception:
                    stream = "?"
                res = track("event stream subscription", f"{_name}(stream={stream!r}, name={kwargs.get('name', '')!r})",
                            sub, key=sub)
                box.append(res)
                return sub

            setattr(stream_cls, name, factory)

    sub_cls = carb.events.ISubscription
    orig_unsub = sub_cls.unsubscribe

    def unsubscribe(self):
        release(self)
        return orig_unsub(self)

    sub_cls.unsubscribe = unsubscribe

    settings_cls = carb.settings.ISettings
    for name in ("subscribe_to_node_change_events", "subscribe_to_tree_change_events"):
        orig = getattr(settings_cls, name)

        def subscribe(self, path, fn, *args, _orig=orig, _name=name, **kwargs):
            box: list = []
            sid = _orig(self, path, _wrap_callback(fn, box), *args, **kwargs)
            res = track("settings subscription", f"{_name}({path!r})", sid, weak=False, key=sid)
            box.append(res)
            return sid

        setattr(settings_cls, name, subscribe)
    orig_unsubscribe = settings_cls.unsubscribe_to_change_events

    def unsubscribe_to_change_events(self, sid):
        release(sid)
        return orig_unsubscribe(self, sid)

    settings_cls.unsubscribe_to_change_events = unsubscribe_to_change_events
    _installed = True
