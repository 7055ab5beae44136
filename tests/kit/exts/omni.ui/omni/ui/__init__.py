"""TEST-ONLY stand-in for omni.ui, generated from tests/kit/contracts/omni_ui.toml (see docs/testing.md)."""

import omni.ext as _omni_ext
from contract_standin import install_standin as _install_standin

from . import _behaviour

_install_standin(globals(), "omni_ui.toml", _behaviour)


class _StandinUiDriver(_omni_ext.IExt):
    """Builds dirty frames once per Kit update, as omni.ui does when it draws (build_fn runs lazily)."""

    def on_startup(self, ext_id):
        _behaviour.start_drawing()

    def on_shutdown(self):
        _behaviour.stop_drawing()
