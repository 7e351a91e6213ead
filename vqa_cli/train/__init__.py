"""Training: options, data and annotations, model building, losses, the loop and checkpoints."""
