"""omni.replicator.core stand-in state: registries, attachments (tracked until detached/destroyed), orchestrator.

Faithful to the points of API_FACTS.md §A1 that code gets wrong: ``WriterRegistry.get`` builds the writer without
``__init__`` (``initialize`` runs it); one annotator attaches to one render product; the synchronous orchestrator
calls raise inside an extension (unless ``builtins.ISAAC_LAUNCHED_FROM_TERMINAL is False``, as SimulationApp sets
it); ``wait_until_complete_async`` runs writers' ``on_final_frame``; ``get_data()`` without ``do_array_copy=True``
hands out the stand-in's own buffers, which the next step overwrites (Replicator reuses its buffers too).

Annotator data, two ways (stand-in-only helpers, not in the contract):

* ``queue_payloads(frames)``: each following step "renders" the next frame, a dict annotator name -> payload as
  ``get_data()`` returns it; ``get_data()`` and writer payloads return that frame's payload for the annotator's name
  (``LookupError`` when the frame has none). With several render products a writer's legacy payload keys are
  ``"<annotator>-<render product name>"``.
* ``omni.replicator.core.__standin_data__ = fn(annotator_name, render_product, init_params, frame) -> data``.
"""

from __future__ import annotations

import builtins
import copy
import sys
from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np
from contract_standin import resources
from contract_standin.standin import new_instance, next_update


def _rep():
    return sys.modules["omni.replicator.core"]


class OrchestratorError(Exception):
    """Raised by the synchronous orchestrator calls outside SimulationApp (RC orchestrator.py)."""


class AnnotatorRegistryError(Exception):
    """Raised for an annotator name that is not registered (RC annotators.py)."""


class _State:
    seed = None
    status = "STOPPED"
    frames = 0
    writers: dict = {}  # name -> class
    attached_writers: list = []
    render_products = 0
    queue: deque = deque()  # frames of payloads waiting for a step
    queued = False  # queue_payloads() was called: get_data serves the current frame only
    current: dict | None = None  # payloads of the frame the last step rendered
    views: list = []  # arrays handed out without a copy since the last step


_state = _State()


def queue_payloads(frames: Iterable[Mapping]) -> None:
    """Stand-in helper: the next steps render ``frames`` in order (copied: the caller keeps its own)."""
    _state.queue.extend(copy.deepcopy(dict(f)) for f in frames)
    _state.queued = True


def clear_payloads() -> None:
    """Stand-in helper: forget queued frames and go back to ``__standin_data__``."""
    _state.queue.clear()
    _state.queued, _state.current = False, None


def pending_payloads() -> int:
    """Stand-in helper: frames queued and not rendered yet."""
    return len(_state.queue)


def _annotator_data(name: str, render_product, init_params, do_array_copy: bool):
    if _state.queued:
        if _state.current is None:
            raise LookupError("omni.replicator.core stand-in: no queued frame was rendered (queue_payloads, then step)")
        if name not in _state.current:
            raise LookupError(f"omni.replicator.core stand-in: the rendered frame has no payload for annotator "
                              f"'{name}' (it has {sorted(_state.current)})")
        data = _state.current[name]
        if do_array_copy:
            return copy.deepcopy(data)
        _state.views.extend(_arrays(data))
        return data
    fn = _rep().__standin_data__
    if fn is None or render_product is None:
        return np.empty((0,), dtype=np.uint8)
    return fn(name, render_product, init_params, _state.frames)


def _arrays(data) -> list:
    if isinstance(data, np.ndarray):
        return [data]
    if isinstance(data, Mapping):
        return [a for v in data.values() for a in _arrays(v)]
    return []


def _advance() -> None:
    """One rendered frame: the last frame's buffers are overwritten, the next queued frame becomes current."""
    for view in _state.views:
        if view.flags.writeable and view.dtype.names is None:
            view.fill(np.nan if view.dtype.kind == "f" else 0xAB if view.dtype.itemsize == 1 else 0xABAB)
    _state.views.clear()
    _state.frames += 1
    _state.status = "STEPPED"
    if _state.queued:
        _state.current = _state.queue.popleft() if _state.queue else None
    for writer in list(_state.attached_writers):
        if writer._trigger is not None or getattr(writer, "_scheduled", False):
            writer._scheduled = False
            writer.write(_payload(writer))
            writer.num_written = getattr(writer, "num_written", 0) + 1


def set_global_seed(seed):
    _state.seed = int(seed)


def get_global_seed():
    return _state.seed


# ------------------------------------------------------------------ render products and annotators


class RenderProduct:
    def _standin_setup(self):
        self._destroyed = False

    def destroy(self):
        self._destroyed = True
        resources.release(self)


def create_render_product(camera, resolution, force_new=False, name=None, render_vars=None):
    w, h = (int(v) for v in resolution)
    if w <= 0 or h <= 0:
        raise ValueError(f"render_product: resolution must be (W, H) > 0, got {resolution!r}")
    _state.render_products += 1
    rep = _rep()
    rp = new_instance(rep.RenderProduct)
    object.__setattr__(rp, "path", f"/Render/{name or 'RenderProduct'}_{_state.render_products}")
    object.__setattr__(rp, "hydra_texture", new_instance(rep.HydraTexture))
    rp._camera, rp._resolution = camera, (w, h)
    resources.track("replicator render product", f"render product {rp.path} not destroyed", rp, weak=False)
    return rp


class Annotator:
    def _standin_setup(self):
        self._render_products = []
        self._init_params = None

    def attach(self, render_products, render_product_idxs=None):
        rps = list(render_products) if isinstance(render_products, (list, tuple)) else [render_products]
        if len(rps) > 1:
            raise NotImplementedError("stand-in (as omni.replicator.core 1.12): one annotator per render product")
        self._render_products = rps
        resources.track("replicator annotator attachment", f"annotator {self.name!r} attached to "
                        f"{getattr(rps[0], 'path', rps[0])} not detached", self, weak=False)
        return self

    def detach(self, render_products=None):
        self._render_products = []
        resources.release(self)

    def get_data(self, device=None, do_array_copy=False, use_legacy_structure=True):
        rp = self._render_products[0] if self._render_products else None
        if rp is None:
            raise RuntimeError(f"stand-in: get_data() on annotator {self.name!r}, which is not attached")
        return _annotator_data(self.name, rp, self._init_params, do_array_copy)

    def initialize(self, **kwargs):
        if self._render_products:
            raise RuntimeError(f"annotator {self.name!r}: initialize() after attach()")
        self._init_params = kwargs


def get_annotator(name, init_params=None, render_product_idxs=None, device=None, do_array_copy=True):
    rep = _rep()
    if name not in rep.__contract__.data.get("annotators", []):
        raise AnnotatorRegistryError(f"Annotator {name!r} is not registered")
    ann = new_instance(rep.Annotator)
    object.__setattr__(ann, "name", name)
    ann._init_params = dict(init_params or {})
    return ann


class AnnotatorRegistry:
    get_annotator = staticmethod(get_annotator)

    @staticmethod
    def get_registered_annotators():
        return list(_rep().__contract__.data.get("annotators", []))


# ------------------------------------------------------------------ writers


class Backend:
    def initialize(self, **kwargs):
        self._params = kwargs


def get_backend(name):
    if name != "DiskBackend":
        raise ValueError(f"stand-in backends.get: unknown backend {name!r} (known: DiskBackend)")
    backend = new_instance(_rep().Backend)
    backend._name = name
    return backend


class Writer:
    backend = None
    version = "0.0.1"
    annotators = []
    num_written = 0
    data_structure = "legacy"

    def initialize(self, **kwargs):
        self.__init__(**kwargs)

    def attach(self, render_products, trigger="omni.replicator.core.OgnOnFrame"):
        self._render_products = list(render_products) if isinstance(render_products, (list, tuple)) else [render_products]
        self._trigger = trigger
        if self.backend is None and not getattr(type(self), "_standin_warned", False):
            import carb

            type(self)._standin_warned = True
            carb.log_warn(f"{type(self).__name__}: no backend set, metadata cannot be written")
        _state.attached_writers.append(self)
        resources.track("replicator writer attachment", f"writer {type(self).__name__} attached, not detached",
                        self, weak=False)

    def detach(self):
        if self in _state.attached_writers:
            _state.attached_writers.remove(self)
        resources.release(self)

    def write(self, data):
        raise NotImplementedError("Writer.write is abstract")

    def on_final_frame(self):
        pass

    def schedule_write(self):
        self._scheduled = True


def _payload(writer) -> dict:
    """A legacy writer payload: ``<anno>`` keys for one render product, ``<anno>-<rp name>`` for several."""
    data = {"reference_time": (_state.frames, 1), "trigger_outputs": {"on_time": _state.frames}}
    rps = writer._render_products or [None]
    for name in getattr(writer, "annotators", []) or []:
        name = getattr(name, "name", name)
        for rp in rps:
            key = name if len(rps) == 1 else f"{name}-{str(getattr(rp, 'path', rp)).rsplit('/', 1)[-1]}"
            data[key] = _annotator_data(name, rp, None, do_array_copy=True)
    return data


class WriterRegistry:
    @staticmethod
    def register(writer, category=None):
        if not isinstance(writer, type):
            raise TypeError(f"WriterRegistry.register takes a Writer class, got {writer!r}")
        name = writer.__name__
        if name in _state.writers:
            import carb

            carb.log_warn(f"Writer {name} is already registered; overwriting")
            resources.release(_state.writers[name])
        _state.writers[name] = writer
        resources.track("replicator writer registration", f"writer {name} registered, not unregistered", writer,
                        weak=False)

    @staticmethod
    def unregister(name):
        cls = _state.writers.pop(name, None)
        if cls is None:
            raise KeyError(f"writer {name!r} is not registered")
        resources.release(cls)

    @staticmethod
    def get(name, init_params=None, render_products=None, trigger="omni.replicator.core.OgnOnFrame"):
        cls = _state.writers.get(name)
        if cls is None:
            raise ValueError(f"writer {name!r} is not registered")
        writer = cls.__new__(cls)  # as Replicator: __init__ runs only in initialize()
        if init_params is not None:
            writer.initialize(**init_params)
        if render_products is not None:
            writer.attach(render_products, trigger=trigger)
        return writer

    @staticmethod
    def get_writers():
        return dict(_state.writers)

    @staticmethod
    def detach_all():
        for writer in list(_state.attached_writers):
            writer.detach()


# ------------------------------------------------------------------ orchestrator


def _inside_extension() -> bool:
    return getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", True) is not False


async def step_async(rt_subframes=-1, pause_timeline=True, delta_time=None, wait_for_render=True):
    await next_update()
    _advance()


def step(rt_subframes=-1, pause_timeline=True, delta_time=None, wait_for_render=True):
    if _inside_extension():
        raise OrchestratorError("step() works only under SimulationApp; inside an extension use await step_async()")
    _advance()


async def wait_until_complete_async():
    await next_update()
    _complete()


def _complete() -> None:
    if _state.status != "STOPPED":
        _state.status = "STOPPED"
        for writer in list(_state.attached_writers):
            writer.on_final_frame()


def wait_until_complete():
    if _inside_extension():
        raise OrchestratorError("wait_until_complete() works only under SimulationApp; inside an extension use "
                                "await wait_until_complete_async()")
    _complete()


def stop():
    _state.status = "STOPPED"


async def stop_async():
    await next_update()
    stop()


def get_status():
    return getattr(_rep().orchestrator.Status, _state.status)


def set_capture_on_play(value):
    import carb.settings

    carb.settings.get_settings().set("/omni/replicator/captureOnPlay", bool(value))


def carb_settings(path, value):
    import carb.settings

    carb.settings.get_settings().set(path, value)


CLASSES = {
    "orchestrator.OrchestratorError": OrchestratorError,
    "annotators.AnnotatorRegistryError": AnnotatorRegistryError,
    "RenderProduct": RenderProduct, "Annotator": Annotator, "AnnotatorRegistry": AnnotatorRegistry,
    "Backend": Backend, "Writer": Writer, "WriterRegistry": WriterRegistry,
}
FUNCTIONS = {
    "set_global_seed": set_global_seed, "get_global_seed": get_global_seed,
    "create.render_product": create_render_product, "annotators.get": get_annotator, "backends.get": get_backend,
    "orchestrator.step_async": step_async, "orchestrator.step": step,
    "orchestrator.wait_until_complete_async": wait_until_complete_async,
    "orchestrator.wait_until_complete": wait_until_complete, "orchestrator.stop": stop,
    "orchestrator.stop_async": stop_async, "orchestrator.get_status": get_status,
    "orchestrator.set_capture_on_play": set_capture_on_play, "settings.carb_settings": carb_settings,
}
