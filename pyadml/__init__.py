"""pyadml: Adversarial Deep Metric Learning for text-enrolled open-vocabulary keyword spotting."""

__version__ = "0.1.0"
