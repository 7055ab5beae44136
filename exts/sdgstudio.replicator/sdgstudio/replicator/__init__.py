"""SDG Studio's Replicator backend: renders SDG Studio scenes with omni.replicator.core on Isaac Sim's RTX stage.

Importing this package imports nothing from Kit, pxr or Replicator (``python -m sdgstudio.replicator.run`` must be
able to start Isaac Sim's ``SimulationApp`` before any of those load). Pure modules: ``plan`` (which Replicator
annotators an SDG Studio config needs), ``objects`` and ``normalize`` (Replicator payloads -> ``FrameData``),
``synthesize`` (the payloads a ``FrameData`` implies, for tests), ``scene`` (the labelled objects of a USD stage,
pxr only), ``run`` (the headless runner; it imports Isaac Sim only when started). Kit-only modules: ``backend``,
``writer``, ``generate``, ``extension``.
"""

__version__ = "0.1.0"
