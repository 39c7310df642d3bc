"""Training, decoding, BLEU and checkpoints."""
