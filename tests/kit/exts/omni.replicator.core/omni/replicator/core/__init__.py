"""TEST-ONLY stand-in for omni.replicator.core, generated from tests/kit/contracts/omni_replicator_core.toml.

It renders nothing. Annotator data comes from ``__standin_data__``: a test sets it to
``fn(annotator_name, render_product, init_params, frame) -> data``; unset, get_data() returns an empty array.
"""

from contract_standin import install_standin as _install_standin

from . import _behaviour

_install_standin(globals(), "omni_replicator_core.toml", _behaviour)
__standin_data__ = None
