"""Gradient checking: the one module used by notebooks, public checks and the hidden grader.

Everything runs in float64. The verdict for a tensor is a *directional* check: for a few random unit directions
v, the analytic directional derivative <grad, v> must match the central difference
(L(x + h v) - L(x - h v)) / 2h, where L(x) = sum(f(x) * dout). It costs two forward passes per direction and,
unlike sampling coordinates, it notices a single wrong entry anywhere in the tensor. Coordinate-wise
differences are used only to say *where* a gradient is wrong.

Functions take plain callables, so the grader can pass functions that run in a sandboxed worker.
"""
from __future__ import annotations

import copy
from typing import Callable, Mapping

import numpy as np

Array = np.ndarray


def rel_error(a, b) -> float:
    """Largest elementwise relative error max |a - b| / max(1e-8, |a| + |b|) (CS231n's notebook measure)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))) if a.size else 0.0


def norm_rel_error(got, expected) -> float:
    """||got - expected|| / (||got|| + ||expected||), 0 when both are zero. The verdict measure for gradients."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    denom = np.linalg.norm(got) + np.linalg.norm(expected)
    return float(np.linalg.norm(got - expected) / denom) if denom > 0 else 0.0


def away_from_kinks(x: Array, margin: float = 1e-3, kinks: tuple[float, ...] = (0.0,)) -> Array:
    """Copy of x where entries closer than `margin` to a kink are pushed to kink +/- margin.

    Central differences are wrong at non-differentiable points (ReLU at 0), so checks avoid them.
    """
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, margin, -margin)
    return x


def numeric_grad(f: Callable[[Array], Array], x: Array, dout: Array, h: float = 1e-6) -> Array:
    """Full central-difference gradient of sum(f(x) * dout) with respect to x (every entry; small x only).

    f is called with a perturbed copy of x, so it may not modify x in place.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = np.sum(np.asarray(f(x.copy()), dtype=np.float64) * dout)
        x[idx] = old - h
        minus = np.sum(np.asarray(f(x.copy()), dtype=np.float64) * dout)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def directional_errors(f: Callable[..., Array], inputs: Mapping[str, Array], grads: Mapping[str, Array],
                       dout, rng: np.random.Generator, h: float = 1e-6,
                       directions: int = 3) -> dict[str, float]:
    """Per-tensor error of analytic gradients against directional central differences.

    Args:
        f: called as f(**inputs) and returns the output array (or scalar loss).
        inputs: the point at which gradients were taken, by argument name.
        grads: analytic gradient for each name to check (same shapes as the inputs).
        dout: upstream gradient, same shape as f's output (1.0 for a scalar loss).
        rng: source of the random directions (seeded by the caller).
    Returns:
        name -> norm-relative error between the vectors of numeric and analytic directional derivatives.
    """
    # arrays are checked in float64; other arguments (a bn_param dict, labels) are passed along as copies
    base = {k: np.array(v, dtype=np.float64) if isinstance(v, (np.ndarray, float)) else v for k, v in inputs.items()}
    dout = np.asarray(dout, dtype=np.float64)
    errors = {}
    for name, grad in grads.items():
        grad = np.asarray(grad, dtype=np.float64)
        numeric, analytic = [], []
        for _ in range(directions):
            v = rng.standard_normal(base[name].shape)
            v /= max(np.linalg.norm(v), 1e-300)
            loss = []
            for sign in (1.0, -1.0):
                args = {k: copy.deepcopy(a) for k, a in base.items()}  # fresh copies: f may write to its inputs
                args[name] = base[name] + sign * h * v
                loss.append(float(np.sum(np.asarray(f(**args), dtype=np.float64) * dout)))
            numeric.append((loss[0] - loss[1]) / (2 * h))
            analytic.append(float(np.sum(grad * v)) if grad.shape == v.shape else np.nan)
        errors[name] = norm_rel_error(analytic, numeric) if np.all(np.isfinite(analytic)) else np.inf
    return errors


def _pair(got: float, expected: float) -> str:
    """'got G, expected E' with just enough digits that the two numbers read differently."""
    for digits in range(6, 18):
        g, e = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if g != e:
            break
    return f"got {g}, expected {e}"


def diagnose(name: str, got, expected, max_entries: int = 3, rtol: float = 1e-6, gradient: bool = False) -> str:
    """Say where and how `got` differs from `expected`: shape, worst entries, and a likely cause.

    An entry counts as wrong by the same measure as the verdict: |got - expected| > rtol * max(1, |expected|) for
    values; for a gradient (norm-relative verdict) > rtol * (||got|| + ||expected||) / sqrt(size), so a gradient
    that fails always shows at least one wrong entry.
    """
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        hint = " (it looks transposed)" if got.shape == expected.shape[::-1] else ""
        return f"{name} has shape {got.shape}, expected {expected.shape}{hint}"
    if not np.all(np.isfinite(got)):
        nan, inf = np.argwhere(np.isnan(got)), np.argwhere(np.isinf(got))
        first = tuple(int(i) for i in (nan if len(nan) else inf)[0])
        text = f"{name} has {len(nan) + len(inf)} non-finite entries (first at index {first})"
        if len(nan):  # exp overflowed to inf, then inf / inf or inf - inf gave NaN
            text += f"; {len(nan)} are NaN: exp overflowed, so subtract the row max before exp"
        if len(inf):  # log(0): a probability that underflowed to exactly 0
            text += (f"; {len(inf)} are infinite: log of a probability that underflowed to 0 (or a division by 0); "
                     f"compute log-probabilities as shifted - log(sum(exp(shifted))) (log-sum-exp), not log(p)")
        return text
    diff = np.abs(got - expected)
    order = np.argsort(diff, axis=None)[::-1][:max_entries]
    worst = ", ".join(f"{name}{tuple(int(i) for i in np.unravel_index(k, got.shape))}: "
                      f"{_pair(got.flat[k], expected.flat[k])}" for k in order)
    if gradient:
        wrong = diff > rtol * (np.linalg.norm(got) + np.linalg.norm(expected)) / np.sqrt(max(got.size, 1))
    else:
        wrong = diff > rtol * np.maximum(1.0, np.abs(expected))
    return f"{name}: {int(wrong.sum())} of {got.size} entries wrong; worst {worst}{likely_cause(got, expected)}"


def likely_cause(got: Array, expected: Array) -> str:
    """A short guess at the bug behind a wrong array, or ''."""
    if not np.any(got) and np.any(expected):
        return "; it is all zeros: is it computed at all?"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, expected.T, rtol=1e-6, atol=1e-12):
        return "; it equals the transpose of the expected value"
    if np.allclose(got, -expected, rtol=1e-6, atol=1e-12):
        return "; it has the wrong sign"
    offset = got - expected
    c = float(np.median(offset))
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
    if abs(c) > 1e-12 * max(1.0, scale) and np.allclose(offset, c, rtol=1e-6, atol=1e-9 * max(1.0, scale)):
        return f"; it is off by a constant offset of {c:+.6g} (an extra or missing additive term, e.g. eps?)"
    mask = np.abs(expected) > 1e-12
    if mask.any():
        ratios = got[mask] / expected[mask]
        r = float(np.median(ratios))
        if np.allclose(ratios, r, rtol=1e-5) and abs(r) > 1e-12:
            inv = 1.0 / r
            if abs(inv - round(inv)) < 1e-6 and round(inv) > 1:
                return f"; it is off by a factor of 1/{round(inv)} (a missing or extra division by {round(inv)}?)"
            if abs(r - round(r)) < 1e-6 and round(r) > 1:
                return f"; it is off by a factor of {round(r)} (a missing division by {round(r)}, e.g. by N?)"
            return f"; it is off by a constant factor of {r:.6g}"
    return ""


def check_layer(forward: Callable, backward: Callable, inputs: Mapping[str, Array], seed: int = 0,
                rtol: float = 1e-6, h: float = 1e-6, directions: int = 3, verbose: bool = True) -> dict[str, float]:
    """Gradient-check a forward/backward pair in CS231n form.

    `forward(**inputs)` returns (out, cache); `backward(dout, cache)` returns the gradients in the order of
    `inputs` (a tuple, or a single array for one input). Returns name -> error and prints one line per input.
    """
    # upstream gradient and directions come from streams of their own: with the same seed as the caller's
    # inputs, dout could be a copy of x (and batchnorm's dx would then be ~0 for any implementation)
    dout_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 7]).spawn(2))
    inputs = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    out, cache = forward(**{k: v.copy() for k, v in inputs.items()})
    dout = dout_rng.standard_normal(np.shape(out))
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    named = dict(zip(inputs, grads))
    errors = directional_errors(lambda **kw: forward(**kw)[0], inputs, named, dout, rng, h, directions)
    if verbose:
        for name, err in errors.items():
            print(f"d{name}: error {err:.2e} {'ok' if err <= rtol else 'WRONG'} (seed {seed})")
    return errors
