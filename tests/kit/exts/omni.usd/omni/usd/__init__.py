"""TEST-ONLY stand-in for omni.usd, generated from tests/kit/contracts/omni_usd.toml (see docs/testing.md)."""

from contract_standin import install_standin as _install_standin

from . import _behaviour

_install_standin(globals(), "omni_usd.toml", _behaviour)
