"""Training and evaluation: BIO data, the training network and loop, scoring (torch for training)."""
