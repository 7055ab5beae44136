"""``sdgstudio preview``: a contact sheet of frames rendered in memory, labels drawn over them, one PNG out.

Renders with the same ``RenderSession`` as ``generate`` (so frame k looks exactly as it will in the dataset),
draws with ``overlay.py`` (as the report's sample grid does), and writes nothing but the sheet: no dataset
folder, no manifest, no stage files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from .config import SDGConfig
from .manifest import write_file_durably
from .overlay import contact_sheet, draw_overlay

#: Layers the sheet needs, whatever the config's annotators: the image and the instance mask.
PREVIEW_LAYERS = {"rgb", "instance_segmentation"}


def parse_frame_range(text: str) -> range:
    """``"A:B"`` -> frames A..B-1 (Python slice style), ``"K"`` -> frame K alone.

    Raises:
        ValueError: not of that form, negative, or empty.
    """
    parts = text.split(":")
    try:
        if len(parts) == 1:
            start = int(parts[0])
            frames = range(start, start + 1)
        elif len(parts) == 2:
            frames = range(int(parts[0]), int(parts[1]))
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"expected START:STOP or FRAME (e.g. 0:16), got '{text}'") from None
    if frames.start < 0 or len(frames) == 0:
        raise ValueError(f"expected 0 <= START < STOP, got '{text}'")
    return frames


def render_preview(config: SDGConfig, frames: Sequence[int], out: Path | str, *, backend: str = "raster",
                   device: str = "cpu", tile_width: int = 320, columns: int = 4) -> Path:
    """Render ``frames`` of ``config`` (its seed) and write their overlaid contact sheet to ``out`` (PNG).

    ``tile_width`` is each tile's width in pixels; the sheet is ``columns`` tiles wide. The PNG replaces
    ``out`` atomically; nothing else is written.

    Raises:
        RunError: ``out``'s folder does not exist (checked before rendering), or the backend is unavailable.
    """
    from .session import RenderSession, RunError, make_backend

    out = Path(out)
    if not out.parent.is_dir():
        raise RunError(f"{out.parent}: no such folder for the contact sheet")
    session = RenderSession(config, make_backend(backend, config, device))
    session.annotators = session.annotators | PREVIEW_LAYERS
    tiles, captions = [], []
    for index in frames:
        _, frame = session.render(index)
        objects = [o.to_json() for o in frame.objects]
        tiles.append(draw_overlay(frame.rgb, frame.instance_segmentation, objects,
                                  width=min(tile_width, frame.camera.width)))
        captions.append(f"frame {index} · {sum(1 for o in objects if o['pixel_count'] > 0)} visible objects")
    buffer = io.BytesIO()
    contact_sheet(tiles, captions, columns=columns).save(buffer, format="PNG", optimize=False)
    write_file_durably(out, buffer.getvalue(), drop_cache=False)
    return out
