"""Training: configuration, the trainer (DDP, checkpoints, resumption)."""
