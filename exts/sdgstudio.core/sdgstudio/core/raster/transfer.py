"""A frame's host <-> device traffic in few large asynchronous copies (``FrameTraffic``), from recycled buffers.

A frame uploads some 40 small tables (poses, materials, lights, shadow cells) and reads back its images and a few
counts. Copied one by one, each costs the host a driver call and, on CUDA, from pageable memory, a wait for every
kernel queued on the stream before it. Here the tables are packed into page-locked chunks and sent with one copy
per chunk; the kernels read them through views into the device side of the chunk. Read-backs are queued into
page-locked memory and waited for once, on an event created with ``CU_EVENT_BLOCKING_SYNC``, so that the waiting
thread sleeps instead of spinning a core (processes sharing a GPU need those cores) and releases the GIL.

On the CPU the same packing runs, with a host side copied into the device side at ``send``: the path the tests
exercise everywhere, where a table used before its ``send`` reads stale memory as it would on a GPU.
"""

from __future__ import annotations

import threading

import numpy as np
import warp as wp

__all__ = ["FrameTraffic", "Staging"]

_ALIGN = 16  #: bytes; every view starts on a multiple (float4 / mat44 loads)
_CHUNK = 1 << 20  #: bytes; the smallest chunk allocated
_EVENT_BLOCKING_SYNC, _EVENT_DISABLE_TIMING = 0x1, 0x2  #: CUevent flags (wp.Event.Flags)


def _numpy_dtype(dtype) -> type:
    return wp.dtype_to_numpy(getattr(dtype, "_wp_scalar_type_", dtype))


class _Chunk:
    """``host`` (page-locked on CUDA) and ``dev`` of the same size; scratch chunks (``staged`` False) have no host
    side."""

    def __init__(self, device: wp.context.Device, nbytes: int, staged: bool = True) -> None:
        self.nbytes, self.staged = nbytes, staged
        self.dev = wp.empty(nbytes, dtype=wp.uint8, device=device)
        self.host = wp.empty(nbytes, dtype=wp.uint8, device="cpu", pinned=device.is_cuda) if staged else None
        self.bytes = self.host.numpy() if staged else None  # a view
        self.used = 0
        self.sent = 0


def _view(root: np.ndarray, offset: int, a: wp.array) -> np.ndarray:
    """The numpy view of ``a``'s bytes at ``offset`` in the byte array ``root``."""
    size = a.size * wp.types.type_size_in_bytes(a.dtype)
    return root[offset:offset + size].view(_numpy_dtype(a.dtype)).reshape(a.shape + getattr(a.dtype, "_shape_", ()))


class _Lease:
    """Keeps a read-back chunk out of the pool while numpy arrays over it live (``np.asarray(lease)`` is their
    base), so that images reach their consumer (the writer) without a copy into fresh, page-faulting memory."""

    def __init__(self, chunk: _Chunk, staging: Staging) -> None:
        self.chunk, self.staging = chunk, staging
        memory = chunk.bytes if chunk.staged else chunk.dev.numpy()  # a scratch chunk: CPU device memory
        self.__array_interface__ = memory.__array_interface__

    def __del__(self) -> None:
        try:
            self.staging.give([self.chunk], [])
        except Exception:  # interpreter shutdown
            pass


class Staging:
    """A backend's pool of chunks and wait events, shared by the frames it has in flight (thread-safe)."""

    def __init__(self, device: wp.context.Device) -> None:
        self.device = device
        self._free: list[_Chunk] = []
        self._events: list[wp.Event] = []
        self._lock = threading.Lock()

    def take(self, nbytes: int, staged: bool = True) -> _Chunk:
        """The smallest free chunk of the kind that fits, else a new one (sizes rounded up by at most 1/8)."""
        with self._lock:
            fits = [k for k, c in enumerate(self._free) if c.staged == staged and c.nbytes >= nbytes]
            if fits:
                chunk = self._free.pop(min(fits, key=lambda k: self._free[k].nbytes))
                chunk.used = chunk.sent = 0
                return chunk
        step = 1 << max(0, int(nbytes).bit_length() - 4)
        return _Chunk(self.device, max(_CHUNK, -(-int(nbytes) // step) * step), staged)

    def give(self, chunks: list[_Chunk], events: list[wp.Event]) -> None:
        with self._lock:
            self._free.extend(chunks)
            self._events.extend(events)

    def event(self) -> wp.Event:
        with self._lock:
            if self._events:
                return self._events.pop()
        try:  # Warp's own events spin while waited for; the flags are the driver's (wp.Event.Flags)
            from warp._src.context import runtime

            handle = runtime.core.wp_cuda_event_create(self.device.context,
                                                       _EVENT_BLOCKING_SYNC | _EVENT_DISABLE_TIMING)
            if not handle:
                raise RuntimeError("no event")
            event = wp.Event(self.device, cuda_event=handle)
            event.owner = True  # destroyed with the object
            return event
        except (ImportError, AttributeError, RuntimeError):
            return wp.Event(self.device)


class FrameTraffic:
    """One frame's uploads (``up``, ``up_into``) and read-backs (``fetch``); ``close`` returns its buffers to the pool
    once the frame's kernels are done with them (after its last ``fetch``)."""

    def __init__(self, staging: Staging) -> None:
        self.staging, self.device = staging, staging.device
        self._chunks: list[_Chunk] = []
        self._events: list[wp.Event] = []
        self._kept: list[tuple[wp.array, wp.array]] = []  #: (destination outliving the frame, its view in a chunk)
        self._scratch: list[_Chunk] = []

    def up(self, values, dtype) -> wp.array:
        """``values`` (array-like, its last axes the dtype's shape) as a device array of ``dtype``, valid for
        kernels launched after the next :meth:`send` (or :meth:`fetch`)."""
        a = np.ascontiguousarray(values, _numpy_dtype(dtype))
        inner = getattr(dtype, "_shape_", ())
        shape = (0,) if a.size == 0 else a.shape[:a.ndim - len(inner)] if inner else a.shape
        chunk = self._chunks[-1] if self._chunks else None
        start = 0 if chunk is None else -(-chunk.used // _ALIGN) * _ALIGN
        if chunk is None or start + a.nbytes > chunk.nbytes:
            self.send()
            chunk, start = self.staging.take(a.nbytes), 0
            self._chunks.append(chunk)
        chunk.bytes[start:start + a.nbytes] = a.reshape(-1).view(np.uint8)
        chunk.used = start + a.nbytes
        return wp.array(ptr=chunk.dev.ptr + start, dtype=dtype, shape=shape or (1,), device=self.device)

    def up_into(self, dest: wp.array, values) -> None:
        """Like :meth:`up`, then copied into ``dest`` (a contiguous device array, or slice, that outlives the
        frame: tables cached across frames) at the next :meth:`send`."""
        view = self.up(values, dest.dtype)  # (may send, which starts a new list)
        self._kept.append((dest, view))

    def scratch(self, shape, dtype) -> wp.array:
        """Uninitialized device memory of the frame's own until :meth:`close`, from the pool: per-frame buffers
        without an allocation each frame (on the CPU a fresh one page-faults on first touch: 84 MB per frame of
        triangle tables at 1.2M triangles, twice the time of the kernel that fills them)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = int(np.prod(shape)) * wp.types.type_size_in_bytes(dtype)
        chunk = self.staging.take(max(nbytes, 1), staged=False)
        self._scratch.append(chunk)
        return wp.array(ptr=chunk.dev.ptr, dtype=dtype, shape=shape, device=self.device)

    def send(self) -> None:
        """Queue the copies of what ``up`` and ``up_into`` packed since the last send."""
        for c in self._chunks:
            if c.used > c.sent:
                if self.device.is_cuda:
                    wp.copy(c.dev, c.host, dest_offset=c.sent, src_offset=c.sent, count=c.used - c.sent,
                            stream=self.device.stream)
                else:
                    c.dev.numpy()[c.sent:c.used] = c.bytes[c.sent:c.used]
            c.sent = c.used
        for own, view in self._kept:
            if view.size:
                wp.copy(own, view, stream=self.device.stream if self.device.is_cuda else None)
        self._kept = []

    def fetch(self, arrays: dict[str, wp.array], lend: bool = False) -> dict[str, np.ndarray]:
        """The arrays' contents as numpy arrays of the caller's own, after everything queued so far; one wait.
        Arrays made by :meth:`up` (accumulators) come back with one copy per chunk, into its host side; others
        (on CUDA) through a read-back chunk, one copy each. ``lend``: those others are views of the page-locked
        read-back chunk (CUDA) or of the frame's scratch memory (CPU), lent until the last of them is gone (no
        copy: for images); else copies (CUDA) or views valid until :meth:`close` (CPU)."""
        self.send()
        cuda = self.device.is_cuda
        stream = self.device.stream if cuda else None
        nbytes = {name: a.size * wp.types.type_size_in_bytes(a.dtype) for name, a in arrays.items()}
        home = {name: self._home(a) for name, a in arrays.items()}
        spans: dict[int, list] = {}  # chunk index -> [first byte, end] of its arrays
        for name in arrays:
            if home[name] is not None and nbytes[name]:
                c, off = home[name]
                span = spans.setdefault(c, [off, off + nbytes[name]])
                span[0], span[1] = min(span[0], off), max(span[1], off + nbytes[name])
        for c, (lo, hi) in spans.items():
            chunk = self._chunks[c]
            wp.copy(chunk.host, chunk.dev, dest_offset=lo, src_offset=lo, count=hi - lo, stream=stream)
        others = [name for name in arrays if home[name] is None]
        if not cuda:  # the kernels are done: hand out the memory itself
            out = {name: self._lend_scratch(arrays[name]) if lend else arrays[name].numpy() for name in others}
        else:
            chunk = self.staging.take(sum(-(-nbytes[n] // _ALIGN) * _ALIGN for n in others) or 1)
            chunk.used = chunk.sent = chunk.nbytes  # read-back space, never uploaded
            if not lend:
                self._chunks.append(chunk)
            root = np.asarray(_Lease(chunk, self.staging)) if lend else chunk.bytes
            out, off = {}, 0
            for name in others:
                a = arrays[name]
                if a.size:
                    host = wp.array(ptr=chunk.host.ptr + off, dtype=a.dtype, shape=a.shape, device="cpu")
                    wp.copy(host, a, stream=stream)
                out[name] = _view(root, off, a)
                off += -(-nbytes[name] // _ALIGN) * _ALIGN
            event = self.staging.event()
            self._events.append(event)
            stream.record_event(event)
            wp.synchronize_event(event)
            out = out if lend else {name: v.copy() for name, v in out.items()}
        for name, a in arrays.items():
            if home[name] is not None:
                c, off = home[name]
                out[name] = _view(self._chunks[c].bytes, off, a).copy()
        return {name: out[name] for name in arrays}

    def _lend_scratch(self, a: wp.array) -> np.ndarray:
        """CPU: ``a`` as a numpy view; a scratch chunk holding it leaves the frame, lent until the view is gone."""
        for k, c in enumerate(self._scratch):
            if c.dev.ptr <= a.ptr < c.dev.ptr + c.nbytes:
                del self._scratch[k]
                return _view(np.asarray(_Lease(c, self.staging)), a.ptr - c.dev.ptr, a)
        return a.numpy()

    def _home(self, a: wp.array) -> tuple[int, int] | None:
        """(chunk index, byte offset) of an array made by :meth:`up` in this frame's chunks, else None."""
        for k, c in enumerate(self._chunks):
            if c.dev.ptr <= a.ptr < c.dev.ptr + c.nbytes:
                return k, a.ptr - c.dev.ptr
        return None

    def close(self) -> None:
        self.staging.give(self._chunks + self._scratch, self._events)
        self._chunks, self._scratch, self._events = [], [], []
