"""Topic 3: convolution and pooling from scratch in NumPy, a tiny CNN on CIFAR-10, and the same CNN in PyTorch."""
