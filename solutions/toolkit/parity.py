"""PyTorch parity: one helper that runs a torch function in float64 and compares a NumPy layer with it.

Forward values and gradients have separate tolerances; a shape mismatch gets its own message. torch is imported
lazily, so this module can be imported where torch is absent (it then says so when used).
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

import numpy as np

from toolkit.gradcheck import diagnose, norm_rel_error


def torch_reference(torch_fn: Callable, inputs: Mapping[str, object], dout,
                    wrt: tuple[str, ...] | None = None) -> tuple:
    """Run `torch_fn(**inputs)` in float64 and backpropagate `dout` (None: forward only, no gradients).

    Arrays and floats become float64 tensors (those named in `wrt`, all of them by default, require gradients);
    other values (None, ints, a conv_param dict) pass through unchanged. `torch_fn` returns a tensor, or a tuple of
    tensors with `dout` a tuple of as many upstream gradients.

    Returns:
        out: torch_fn's output as a NumPy array (a tuple of arrays for a tuple).
        grads: name -> gradient of sum(out * dout) with respect to each tensor input in `wrt` (zeros where none).
    """
    import torch

    tensors = {k: torch.tensor(np.asarray(v, dtype=np.float64),
                               requires_grad=dout is not None and (wrt is None or k in wrt))
               if isinstance(v, (np.ndarray, float)) else v for k, v in inputs.items()}
    out = torch_fn(**tensors)
    many = isinstance(out, tuple)
    outs = out if many else (out,)
    arrays = tuple(o.detach().numpy().copy() for o in outs)
    if dout is None:
        return (arrays if many else arrays[0]), {}
    douts = dout if many else (dout,)
    torch.autograd.backward(outs, [torch.as_tensor(np.asarray(d, dtype=np.float64)) for d in douts])
    names = wrt if wrt is not None else [k for k, t in tensors.items() if isinstance(t, torch.Tensor)]
    grads = {k: tensors[k].grad.numpy().copy() if tensors[k].grad is not None else np.zeros(tensors[k].shape)
             for k in names}
    return (arrays if many else arrays[0]), grads


def torch_pair(torch_fn: Callable, wrt: tuple[str, ...] | None = None) -> tuple[Callable, Callable]:
    """A CS231n-style layer computed by `torch_fn` in float64: `forward(*inputs) -> (out, cache)` (or
    `(*outs, cache)` when torch_fn returns a tuple) and `backward(dout, cache)` (or `backward(*douts, cache)`) ->
    the gradients of `wrt` (default: every array input) in that order, one array for one input. Inputs that are not
    arrays (a conv_param dict, None) pass through. The public checks use such pairs as their oracle, so the same
    check runs against PyTorch or against a reference layer."""
    names = list(inspect.signature(torch_fn).parameters)

    def forward(*args, **kwargs):
        inputs = dict(zip(names, args), **kwargs)
        out = torch_reference(torch_fn, inputs, None)[0]
        return (*out, inputs) if isinstance(out, tuple) else (out, inputs)

    def backward(*args):
        *douts, cache = args
        grads = tuple(torch_reference(torch_fn, cache, tuple(douts) if len(douts) > 1 else douts[0], wrt)[1].values())
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
