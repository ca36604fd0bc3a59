"""Training: config schema, trainer loop, checkpoints, logging, evaluation."""
