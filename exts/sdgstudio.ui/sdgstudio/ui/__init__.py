"""SDG Studio's window (Kit extension ``sdgstudio.ui``).

Pure modules (``schema_form``, ``view_model``, ``stage_tools``, ``thumbnails``, ``status``, ``actions``) import no
omni.* and run under pytest; ``form``, ``panels``, ``window`` and ``extension`` are Kit-only.
"""

__version__ = "0.1.0"
