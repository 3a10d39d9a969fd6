"""Figures cross to the checker as plain data: figures.figure_data per artist kind, over the real wire and sandbox."""
from __future__ import annotations

import os
import threading

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import course_config  # noqa: E402
from autograder import figures, wire  # noqa: E402
from autograder.client import WorkerClient  # noqa: E402


def _refuse(obj):
    raise TypeError(f"a {type(obj).__name__} would not cross as plain data")


def assert_plain(value, where="figure") -> None:
    """Only str, float, int, bool, None, lists, str-keyed dicts and bool/int/float arrays: what `encode` sends."""
    if isinstance(value, np.ndarray):
        assert value.dtype.kind in "biuf", f"{where}: array of dtype {value.dtype}"
    elif isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str, f"{where}: key {k!r}"
            assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, float, int, bool), f"{where}: {type(value).__name__}"


def through_wire(fig) -> dict:
    """encode -> write_message -> os.pipe -> read_message -> decode: exactly what the checker process receives."""
    blobs: list[bytes] = []
    value = wire.encode(fig, blobs, _refuse)  # _refuse: nothing may be kept behind as a handle
    r, w = os.pipe()
    # the PNG alone is larger than a pipe's buffer, so write from a thread while this one reads
    writer = threading.Thread(target=lambda: (wire.write_message(w, {"value": value}, blobs), os.close(w)))
    writer.start()
    try:
        header, got = wire.read_message(r)
    finally:
        writer.join()
        os.close(r)
    return wire.decode(header["value"], got, _refuse)


@pytest.fixture(params=["figure_data", "wire"])
def read(request):
    """Read a figure either directly or after a round trip over the wire; both must give the same plain data."""
    def direct(fig):
        data = figures.figure_data(fig)
        assert_plain(data)
        return data

    return direct if request.param == "figure_data" else through_wire


def test_lines_bars_legend_labels(read):
    """The keys the backprop checks read keep their names and meaning."""
    rng = np.random.default_rng(0)
    history = np.exp(rng.standard_normal((6, 2)))  # (T, 2) norms per step and layer
    g = rng.standard_normal(50)
    fig, (ax1, ax2) = plt.subplots(1, 2)
    for i in range(2):
        ax1.plot(np.arange(6), history[:, i], label=f"layer {i + 1}")
    ax1.set(yscale="log", xlabel="step", ylabel="norm", title="flow")
    ax1.legend()
    ax2.hist(g, bins=5)
    ax2.set_title("grads")
    data = read(fig)
    a1, a2 = data["axes"]
    assert (a1["title"], a1["xlabel"], a1["ylabel"], a1["xscale"], a1["yscale"]) == ("flow", "step", "norm",
                                                                                       "linear", "log")
    assert [line["label"] for line in a1["lines"]] == ["layer 1", "layer 2"]
    for i, line in enumerate(a1["lines"]):
        np.testing.assert_array_equal(line["x"], np.arange(6.0))
        np.testing.assert_array_equal(line["y"], history[:, i])
        assert line["y"].dtype == np.float64
    assert a1["legend"] == ["layer 1", "layer 2"] and a2["legend"] == []
    counts, edges = np.histogram(g, bins=5)
    assert a2["bars"].shape == (5, 3) and a2["bars"].dtype == np.float64
    np.testing.assert_array_equal(a2["bars"][:, 2], counts)
    np.testing.assert_allclose(a2["bars"][:, 0], edges[:-1], rtol=1e-12)
    np.testing.assert_allclose(a2["bars"][:, 1], np.diff(edges), rtol=1e-9)
    assert a1["bars"].shape == (0, 3)
    assert data["png"].dtype == np.uint8 and bytes(data["png"][:8]) == b"\x89PNG\r\n\x1a\n"


def test_filter_grid(read):
    """cnn: 8 first-layer filters in a 2x4 grid; each panel's array, colour limits and grid position."""
    filters = np.random.default_rng(1).standard_normal((8, 5, 5))  # (F, HH, WW)
    fig, axs = plt.subplots(2, 4)
    for i, ax in enumerate(axs.flat):
        ax.imshow(filters[i], cmap="gray")
        ax.set_title(f"filter {i}")
        ax.axis("off")
    fig.suptitle("first-layer filters")
    data = read(fig)
    assert data["suptitle"] == "first-layer filters"
    assert data["naxes"] == 8 and data["colorbars"] == 0 and data["grid"] == {"nrows": 2, "ncols": 4}
    for i, ax in enumerate(data["axes"]):
        assert ax["title"] == f"filter {i}"
        assert ax["grid"] == {"nrows": 2, "ncols": 4, "row": i // 4, "col": i % 4, "rowspan": 1, "colspan": 1}
        (im,) = ax["images"]
        assert im["array"].dtype == np.float64
        np.testing.assert_array_equal(im["array"], filters[i])
        assert im["cmap"] == "gray" and im["norm"] == "Normalize"
        assert (im["vmin"], im["vmax"]) == (filters[i].min(), filters[i].max())
        assert im["extent"] == [-0.5, 4.5, 4.5, -0.5]  # imshow's default: pixel centres at integers, origin up
        assert not im["has_colorbar"] and not ax["has_colorbar"] and ax["colorbar"] is False


@pytest.mark.parametrize("layout", [None, "constrained"])  # colorbar via make_axes_gridspec / via make_axes
def test_heatmap_with_tokens_and_colorbar(read, layout):
    """attention: a matshow heatmap with token tick labels, values written in the cells and a colorbar."""
    tokens_q, tokens_k = ["mo", "fẹ́", "jẹun"], ["I", "want", "to", "eat"]
    weights = np.random.default_rng(2).dirichlet(np.ones(4), size=3)  # (T, T') rows sum to 1
    fig, axs = plt.subplots(2, 2, layout=layout)
    heat = axs[1, 0]
    im = heat.matshow(weights, cmap="magma", vmin=0.0, vmax=1.0)
    heat.set_xticks(range(4), labels=tokens_k)
    heat.set_yticks(range(3), labels=tokens_q)
    for i in range(3):
        for j in range(4):
            heat.text(j, i, f"{weights[i, j]:.2f}")
    fig.colorbar(im, ax=heat)
    axs[0, 1].plot([0, 1], [1, 0])
    data = read(fig)
    assert data["naxes"] == 5 and data["colorbars"] == 1 and data["grid"] == {"nrows": 2, "ncols": 2}
    panels = [ax for ax in data["axes"] if not ax["colorbar"]]
    (bar,) = [ax for ax in data["axes"] if ax["colorbar"]]
    assert bar["grid"] is None and not bar["has_colorbar"]
    # the heatmap keeps the grid position the student gave it, though the colorbar re-seats it
    assert [(p["grid"]["row"], p["grid"]["col"]) for p in panels] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    ax = panels[2]
    assert ax["has_colorbar"] and [p["has_colorbar"] for p in panels] == [False, False, True, False]
    (img,) = ax["images"]
    np.testing.assert_array_equal(img["array"], weights)
    assert img["cmap"] == "magma" and (img["vmin"], img["vmax"]) == (0.0, 1.0) and img["has_colorbar"]
    assert ax["xticklabels"] == tokens_k and ax["yticklabels"] == tokens_q
    np.testing.assert_array_equal(ax["xticks"], np.arange(4.0))
    np.testing.assert_array_equal(ax["yticks"], np.arange(3.0))
    assert len(ax["texts"]) == 12
    for t in ax["texts"]:
        assert float(t["text"]) == round(weights[int(t["y"]), int(t["x"])], 2)
    assert panels[1]["images"] == [] and len(panels[1]["lines"]) == 1


def test_scatter_coloured_by_class(read):
    """autoencoders: a 2-D latent scatter with c=labels; offsets, values, colours and sizes are the inputs."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((40, 2))  # (N, L) with L = 2
    labels = rng.integers(0, 10, size=40)  # (N,)
    fig, ax = plt.subplots()
    ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=9, label="codes")
    ax.scatter([0.0, 1.0], [2.0, 3.0], color="red")
    ax.set(xlabel="z1", ylabel="z2")
    data = read(fig)
    coded, plain = data["axes"][0]["scatter"]
    np.testing.assert_array_equal(coded["offsets"], z)
    np.testing.assert_array_equal(coded["values"], labels)
    norm = matplotlib.colors.Normalize(labels.min(), labels.max())
    np.testing.assert_allclose(coded["facecolors"], plt.get_cmap("tab10")(norm(labels)), atol=1e-12)
    np.testing.assert_array_equal(coded["sizes"], [9.0])
    assert coded["label"] == "codes" and not coded["has_colorbar"]
    assert plain["values"] is None
    np.testing.assert_array_equal(plain["facecolors"], [[1.0, 0.0, 0.0, 1.0]] * 2)  # one colour, one row per point


def test_texts_and_spanning_panels(read):
    """ax.text and ax.annotate positions; a panel spanning grid cells (subplot_mosaic) reports its span."""
    fig, axs = plt.subplot_mosaic([["grid", "grid", "z"], ["grid", "grid", "w"]])
    axs["z"].text(0.25, 0.5, "origin")
    axs["z"].annotate("peak", xy=(1.0, 2.0), xytext=(3.0, 4.0), arrowprops={"arrowstyle": "->"})
    data = read(fig)
    by_cell = {(a["grid"]["row"], a["grid"]["col"]): a for a in data["axes"]}
    assert by_cell[(0, 0)]["grid"] == {"nrows": 2, "ncols": 3, "row": 0, "col": 0, "rowspan": 2, "colspan": 2}
    assert by_cell[(0, 2)]["texts"] == [{"text": "origin", "x": 0.25, "y": 0.5},
                                        {"text": "peak", "x": 3.0, "y": 4.0}]
    assert by_cell[(1, 2)]["texts"] == []


def test_rgb_images_keep_channels(read):
    """gan: a grid of RGB samples keeps the trailing channel axis; uint8 pixels arrive as float64."""
    samples = np.random.default_rng(4).integers(0, 256, size=(4, 6, 6, 3), dtype=np.uint8)  # (N, H, W, C)
    fig, axs = plt.subplots(1, 4)
    for ax, s in zip(axs, samples):
        ax.imshow(s)
    data = read(fig)
    for ax, s in zip(data["axes"], samples):
        arr = ax["images"][0]["array"]
        assert arr.shape == (6, 6, 3) and arr.dtype == np.float64
        np.testing.assert_array_equal(arr, s)


def test_odd_figures_do_not_crash(read):
    """Masked images, empty scatters, add_axes, unreadable lines and figures with no axes still cross."""
    masked = np.ma.masked_array(np.arange(6.0).reshape(2, 3), mask=[[0, 1, 0], [0, 0, 1]])
    fig = plt.figure()
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))  # not from a gridspec
    ax.imshow(masked)
    ax.scatter([], [])
    ax.plot(["a", "b"], [1.0, 2.0])  # categorical x: strings, not numbers
    ax.plot([0.0, 1.0], [5.0, 6.0])
    data = read(fig)
    (a,) = data["axes"]
    assert a["grid"] is None and data["grid"] is None
    arr = a["images"][0]["array"]
    np.testing.assert_array_equal(np.isnan(arr), masked.mask)
    np.testing.assert_array_equal(arr[~masked.mask], masked.compressed())
    (empty,) = a["scatter"]
    assert empty["offsets"].shape == (0, 2) and empty["facecolors"].shape == (0, 4)
    assert a["lines"][0] is None  # the unreadable line is None, its neighbour still crosses
    np.testing.assert_array_equal(a["lines"][1]["y"], [5.0, 6.0])

    bare = read(plt.figure())
    assert bare["axes"] == [] and bare["naxes"] == 0 and bare["grid"] is None and bare["suptitle"] == ""
    assert bare["png"].size > 0


HEATMAP_MODULE = '''
import matplotlib.pyplot as plt


def attention_map(weights, tokens):
    """A student's heatmap: weights (T, T) with the tokens on both axes and a colorbar."""
    fig, ax = plt.subplots()
    im = ax.matshow(weights, cmap="viridis")
    ax.set_xticks(range(len(tokens)), labels=tokens)
    ax.set_yticks(range(len(tokens)), labels=tokens)
    ax.set_title("attention")
    fig.colorbar(im, ax=ax)
    return fig
'''


def test_sandboxed_worker_returns_figure_data(tmp_path):
    """A function in a real sandboxed worker returns a Figure; the checker receives the plain dict."""
    folder = tmp_path / "figs"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "heat.py").write_text(HEATMAP_MODULE)
    weights = np.random.default_rng(5).dirichlet(np.ones(3), size=3)  # (T, T)
    tokens = ["ẹ", "kú", "àárọ̀"]
    w = WorkerClient({"figs": folder}, course_config.Limits(), ())
    try:
        w.start()
        w.import_module("figs.heat")
        data = w.call("figs.heat.attention_map", weights, tokens)
    finally:
        w.close()
    assert_plain(data)
    assert data["figure"] is True and data["naxes"] == 2 and data["colorbars"] == 1
    ax, bar = data["axes"]
    assert ax["title"] == "attention" and ax["has_colorbar"] and bar["colorbar"]
    np.testing.assert_array_equal(ax["images"][0]["array"], weights)
    assert ax["xticklabels"] == tokens and ax["yticklabels"] == tokens
    assert ax["grid"] == {"nrows": 1, "ncols": 1, "row": 0, "col": 0, "rowspan": 1, "colspan": 1}
    assert bytes(data["png"][:4]) == b"\x89PNG"
