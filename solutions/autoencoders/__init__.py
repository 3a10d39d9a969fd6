"""Topic 5: autoencoders and variational autoencoders: the ELBO in NumPy, the models in PyTorch, latent figures."""
