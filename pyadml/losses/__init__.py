"""Losses, one module per family (paper sections 3.1-3.2: L_MM, L_phn of Eq. 2, L_utt, L_key)."""

from pyadml.losses.asyp import AsymmetricProxyLoss, asyp_loss
from pyadml.losses.rp import RelationalProxyLoss

__all__ = ["AsymmetricProxyLoss", "RelationalProxyLoss", "asyp_loss"]
