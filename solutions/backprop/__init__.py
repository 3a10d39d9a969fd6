"""Topic 2: backpropagation by hand, a scalar autograd, and gradient-flow diagnostics."""
