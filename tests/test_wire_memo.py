"""autograder.wire.Memo: arrays that cross back unchanged travel as numbers, and decode to the same bytes."""
import numpy as np

from autograder import wire


def _send(sender, receiver, value):
    blobs: list[bytes] = []
    enc = wire.encode(value, blobs, None, memo=sender)
    sender.commit(blobs)
    dec = wire.decode(enc, blobs, None, None, receiver)
    receiver.commit(blobs)
    return enc, dec, blobs


def test_cache_round_trip_sends_numbers_and_same_values():
    worker, grader = wire.Memo(), wire.Memo()
    x, w = np.random.default_rng(0).random((4, 3)), np.arange(6.0).reshape(3, 2)
    _, (gx, gw), blobs = _send(worker, grader, [x, w])
    assert len(blobs) == 2
    enc, (out, cache), blobs = _send(grader, worker, (gx @ gw, (gx, gw)))
    assert len(blobs) == 1 and enc["__tuple__"][1] == {"__tuple__": [{"__seq__": 0}, {"__seq__": 1}]}
    assert np.array_equal(cache[0], x) and cache[0] is not x and np.array_equal(out, x @ w)
    enc, back, blobs = _send(worker, grader, [cache[1]])  # the cache passed on to the backward call
    assert blobs == [] and np.array_equal(back[0], w)


def test_changed_or_unknown_arrays_cross_in_full():
    worker, grader = wire.Memo(), wire.Memo()
    x = np.ones(5)
    _, (gx,), _ = _send(worker, grader, [x])
    _, (wx,), _ = _send(grader, worker, [gx])
    wx[2] = 7.0  # changed in place: its bytes differ from the blob, so they cross again
    enc, (g2,), blobs = _send(worker, grader, [wx])
    assert len(blobs) == 1 and g2[2] == 7.0
    enc, _, blobs = _send(worker, grader, [np.ones(5)])  # equal values, another object: no reference
    assert len(blobs) == 1


def test_both_sides_forget_alike():
    worker, grader = wire.Memo(cap=100), wire.Memo(cap=100)
    for i in range(20):
        _, (g,), _ = _send(worker, grader, [np.full(8, float(i))])
        _, (back,), blobs = _send(grader, worker, [g])
        assert list(worker.blobs) == list(grader.blobs) and worker.size <= 100
        assert np.array_equal(back, np.full(8, float(i)))
