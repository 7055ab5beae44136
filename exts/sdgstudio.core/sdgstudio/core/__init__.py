"""SDG Studio core: config, sampler, stage, raster backend, writer, exporters, CLI (no omni.ui, no Replicator)."""

__version__ = "0.1.0"
