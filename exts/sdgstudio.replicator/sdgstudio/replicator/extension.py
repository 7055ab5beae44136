"""Kit entry point of sdgstudio.replicator: registers ``SDGStudioWriter`` with Replicator, and nothing else.

While the extension is enabled, ``rep.WriterRegistry.get("SDGStudioWriter")`` works (scripts, the Synthetic Data
Recorder's custom-writer field); on shutdown the writer is unregistered, so disabling the extension leaves no
class of ours in Replicator's registry. The backend needs no startup: ``ReplicatorBackend`` and
``generate_async`` are used directly. Imported only inside Kit.
"""

from __future__ import annotations

import carb
import omni.ext
import omni.replicator.core as rep

from . import __version__
from .writer import SDGStudioWriter

WRITER_NAME = SDGStudioWriter.__name__


class SdgStudioReplicatorExtension(omni.ext.IExt):
    """Startup registers the writer; shutdown unregisters it."""

    def on_startup(self, ext_id: str) -> None:
        rep.WriterRegistry.register(SDGStudioWriter)
        carb.log_info(f"sdgstudio.replicator {__version__}: registered Replicator writer {WRITER_NAME}")

    def on_shutdown(self) -> None:
        if WRITER_NAME in rep.WriterRegistry.get_writers():
            rep.WriterRegistry.unregister(WRITER_NAME)
