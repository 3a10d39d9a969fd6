"""Student toolkit shared by every topic: gradient checks, PyTorch parity and data loading."""
