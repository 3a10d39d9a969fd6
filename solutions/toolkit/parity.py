"""PyTorch parity: one helper that runs a torch function in float64 and compares a NumPy layer with it.

Forward values and gradients have separate tolerances; a shape mismatch gets its own message. torch is imported
lazily, so this module can be imported where torch is absent (it then says so when used).
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

import numpy as np

from toolkit.gradcheck import diagnose, norm_rel_error


def torch_reference(torch_fn: Callable, inputs: Mapping[str, np.ndarray], dout) -> tuple[np.ndarray, dict]:
    """Run `torch_fn(**tensors)` in float64 and backpropagate `dout` (None: forward only, no gradients).

    Returns:
        out: torch_fn's output as a NumPy array.
        grads: name -> gradient of sum(out * dout) with respect to each input.
    """
    import torch

    tensors = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=dout is not None)
               for k, v in inputs.items()}
    out = torch_fn(**tensors)
    if dout is None:
        return out.detach().numpy().copy(), {}
    out.backward(torch.as_tensor(np.asarray(dout, dtype=np.float64)))
    grads = {k: t.grad.numpy().copy() if t.grad is not None else np.zeros(t.shape) for k, t in tensors.items()}
    return out.detach().numpy().copy(), grads


def torch_pair(torch_fn: Callable) -> tuple[Callable, Callable]:
    """A CS231n-style layer computed by `torch_fn` in float64: `forward(*inputs) -> (out, cache)` and
    `backward(dout, cache) -> gradients in input order` (one array for one input). The public checks use such
    pairs as their oracle, so the same check runs against PyTorch or against a reference layer."""
    names = list(inspect.signature(torch_fn).parameters)

    def forward(*args, **kwargs):
        inputs = dict(zip(names, args), **kwargs)
        return torch_reference(torch_fn, inputs, None)[0], inputs

    def backward(dout, cache):
        grads = tuple(torch_reference(torch_fn, cache, dout)[1].values())
        return grads[0] if len(grads) == 1 else grads

    return forward, backward


def compare_with_torch(forward: Callable, backward: Callable | None, torch_fn: Callable,
                       inputs: Mapping[str, np.ndarray], seed: int = 0, forward_rtol: float = 1e-7,
                       grad_rtol: float = 1e-7) -> list[str]:
    """Compare a CS231n forward/backward pair with torch; returns a list of mismatch messages (empty if equal).

    `forward(**inputs)` returns (out, cache); `backward(dout, cache)` returns gradients in input order.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))  # not the stream the caller's inputs came from
    inputs = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    out, cache = forward(**{k: v.copy() for k, v in inputs.items()})
    out = np.asarray(out, dtype=np.float64)
    dout = rng.standard_normal(out.shape)
    ref_out, ref_grads = torch_reference(torch_fn, inputs, dout)
    if out.shape != ref_out.shape:
        return [f"forward output has shape {out.shape}, torch gives {ref_out.shape}"]
    problems = []
    if not np.allclose(out, ref_out, rtol=forward_rtol, atol=forward_rtol):
        problems.append("forward: " + diagnose("out", out, ref_out))
    if backward is not None:
        grads = backward(dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        for (name, ref), got in zip(ref_grads.items(), grads):
            got = np.asarray(got, dtype=np.float64)
            if got.shape != ref.shape or norm_rel_error(got, ref) > grad_rtol:
                problems.append("backward: " + diagnose("d" + name, got, ref))
    return problems


def assert_matches_torch(forward: Callable, backward: Callable | None, torch_fn: Callable,
                         inputs: Mapping[str, np.ndarray], seed: int = 0, forward_rtol: float = 1e-7,
                         grad_rtol: float = 1e-7) -> None:
    """Raise AssertionError naming every mismatch between a NumPy layer and its torch counterpart."""
    problems = compare_with_torch(forward, backward, torch_fn, inputs, seed, forward_rtol, grad_rtol)
    assert not problems, f"differs from torch (seed {seed}):\n  " + "\n  ".join(problems)
