"""Topic 1: a feedforward network from scratch in NumPy, and the same network in PyTorch."""
