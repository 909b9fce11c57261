"""Losses, one module per family (spec sections 3-7)."""

from pyadml.losses.asyp import AsymmetricProxyLoss, asyp_loss
from pyadml.losses.rp import RelationalProxyLoss

__all__ = ["AsymmetricProxyLoss", "RelationalProxyLoss", "asyp_loss"]
