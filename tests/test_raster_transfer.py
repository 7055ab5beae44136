"""FrameTraffic: a frame's tables packed into recycled chunks, sent in one copy per chunk, read back at once."""

from __future__ import annotations

import numpy as np
import warp as wp
from sdgstudio.core.raster.transfer import FrameTraffic, Staging


def _staging() -> Staging:
    wp.init()
    return Staging(wp.get_device("cpu"))


def test_tables_arrive_with_their_dtype_and_shape_after_send():
    traffic = FrameTraffic(_staging())
    mats = np.arange(2 * 16, dtype=np.float64).reshape(2, 4, 4)
    a = traffic.up(mats, wp.mat44)
    b = traffic.up([1, 2, 3], wp.int32)
    c = traffic.up([[0.5, 1.5, 2.5]], wp.vec3)
    e = traffic.up([], wp.vec3)
    traffic.send()
    assert a.dtype == wp.mat44 and a.shape == (2,) and np.array_equal(a.numpy(), mats.astype(np.float32))
    assert b.dtype == wp.int32 and list(b.numpy()) == [1, 2, 3]
    assert c.shape == (1,) and np.array_equal(c.numpy(), [[0.5, 1.5, 2.5]])
    assert e.shape == (0,)
    assert all(x.ptr % 16 == 0 for x in (a, b, c))  # aligned views for vector loads
    traffic.close()


def test_a_table_read_before_its_send_is_not_there_yet():
    """As on a GPU, a kernel launched before ``send`` would read stale device memory: the CPU path copies too."""
    traffic = FrameTraffic(_staging())
    a = traffic.up(np.full(8, 7, np.int32), wp.int32)
    assert not np.array_equal(a.numpy(), np.full(8, 7))
    traffic.send()
    assert np.array_equal(a.numpy(), np.full(8, 7))
    traffic.close()


def test_tables_larger_than_a_chunk_span_several_and_buffers_are_reused_by_the_next_frame():
    staging = _staging()
    traffic = FrameTraffic(staging)
    big = np.random.default_rng(0).integers(0, 1000, (1 << 19) + 5).astype(np.int32)  # 2 MiB + 20 bytes
    small = traffic.up(np.arange(10), wp.int32)
    large = traffic.up(big, wp.int32)
    tail = traffic.up(np.arange(5), wp.float32)
    got = traffic.fetch({"large": large, "small": small, "tail": tail})
    assert np.array_equal(got["large"], big) and list(got["small"]) == list(range(10))
    assert list(got["tail"]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    chunks = {id(c) for c in traffic._chunks}
    assert len(chunks) == 2
    traffic.close()
    again = FrameTraffic(staging)
    again.up(big, wp.int32)
    again.up(np.arange(10), wp.int32)
    assert {id(c) for c in again._chunks} <= chunks  # no new allocation
    again.close()


def test_a_table_sent_into_an_array_of_its_own_outlives_the_frame_whose_buffers_the_next_frame_reuses():
    staging = _staging()
    traffic = FrameTraffic(staging)
    kept = wp.zeros(4, dtype=wp.vec3, device="cpu")
    traffic.up_into(kept[1:3], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert not kept.numpy().any()  # not before the send
    traffic.send()
    traffic.close()
    following = FrameTraffic(staging)
    following.up(np.full(64, -1, np.float32), wp.float32)
    following.send()
    assert np.array_equal(kept.numpy(), [[0, 0, 0], [0, 1, 2], [3, 4, 5], [0, 0, 0]])
    following.close()


def test_lent_read_back_memory_returns_to_the_pool_when_its_last_array_is_gone():
    """``fetch(lend=True)`` on CUDA hands out views of a page-locked chunk through a ``_Lease``."""
    from sdgstudio.core.raster.transfer import _Lease

    staging = _staging()
    chunk = staging.take(64)
    root = np.asarray(_Lease(chunk, staging))
    image = root[16:32].view(np.float32).reshape(2, 2)
    del root
    assert chunk not in staging._free  # the image still uses it
    image[:] = 1.0
    del image
    assert chunk in staging._free


def test_scratch_memory_is_reused_by_the_next_frame_unless_lent_with_the_images_it_holds():
    staging = _staging()
    first = FrameTraffic(staging)
    image = first.scratch((4, 3), wp.vec3)
    image.fill_(wp.vec3(1.0, 2.0, 3.0))
    lent = first.fetch({"image": image}, lend=True)["image"]
    first.close()
    second = FrameTraffic(staging)
    other = second.scratch((4, 3), wp.vec3)
    assert other.ptr != image.ptr  # the lent memory is not handed out again ...
    other.fill_(wp.vec3(9.0, 9.0, 9.0))
    assert lent.shape == (4, 3, 3) and np.all(lent == [1.0, 2.0, 3.0])
    second.close()
    third = FrameTraffic(staging)
    assert third.scratch((4, 3), wp.vec3).ptr == other.ptr  # ... while scratch that was not lent is
    del lent
    fourth = FrameTraffic(staging)
    assert fourth.scratch((4, 3), wp.vec3).ptr == image.ptr  # and the lent memory once its array is gone
