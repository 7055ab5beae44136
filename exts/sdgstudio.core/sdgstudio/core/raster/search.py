"""Binary search over ascending device tables (offsets of variable-size parts), for kernels that map an element
to the part it belongs to."""

from __future__ import annotations

import warp as wp

wp.set_module_options({"fuse_fp": False, "enable_backward": False})


@wp.func
def last_at_most(values: wp.array(dtype=wp.int32), n: int, x: int) -> int:
    """The last ``i < n`` with ``values[i] <= x`` (``values`` non-decreasing, ``values[0] <= x``)."""
    lo = wp.int32(0)
    hi = n - 1
    while lo < hi:
        mid = (lo + hi + 1) / 2
        if values[mid] <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo
