"""Training: checkpoints, EMA, stage loops."""
