"""Topic 6: generative adversarial networks in PyTorch: losses, smoothing, gradient penalty, offline FID and IS."""
