"""TEST-ONLY stand-in for omni.kit.menu.utils, generated from tests/kit/contracts/omni_kit_menu_utils.toml (see docs/testing.md)."""

from contract_standin import install_standin as _install_standin

from . import _behaviour

_install_standin(globals(), "omni_kit_menu_utils.toml", _behaviour)
