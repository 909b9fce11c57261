"""Training: configuration (config), the objective with its losses (objective), checkpoint
files and RNG states (checkpoints), torchrun process-group setup (distributed), and the
training loop with logging and dev AP (trainer)."""
