"""pyadml: Adversarial Deep Metric Learning for text-enrolled open-vocabulary keyword spotting."""

__version__ = "0.1.0"

__all__ = ["KeywordSpotter", "Detection", "SpotError"]


def __getattr__(name):
    # Lazy: ``import pyadml`` stays light, and the ONNX backend never pulls in torch.
    if name in __all__:
        from pyadml import spot

        return getattr(spot, name)
    raise AttributeError(f"module 'pyadml' has no attribute {name!r}")
