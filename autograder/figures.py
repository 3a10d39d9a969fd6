"""A matplotlib figure as plain data, so figures cross to the checker as data (never pickled) and checks read what
was drawn, not pixels. Stdlib + NumPy at import; matplotlib only once a figure is converted."""
from __future__ import annotations

import io

def figure_data(fig) -> dict:
    """A matplotlib figure as plain data: per axes one entry per artist kind (AXES_EXTRACTORS), plus a PNG.

    Figures cross to the checker as this dict (never pickled), so checks read what was drawn, not pixels. Keys:
    figure level `figure` (True), `suptitle`, `axes` (one dict per axes, colorbar axes included), `naxes`,
    `colorbars` (how many axes are colorbars), `grid` ({"nrows", "ncols"} of the gridspec most non-colorbar axes
    use, or None) and `png` (uint8 bytes of the PNG, or None if the figure cannot be drawn). An extractor that
    fails records None for its key, and one artist that cannot be read is None in its list, so an odd figure
    fails only the checks that read it.
    """
    import numpy as np

    png = None
    try:  # draw first: tick labels and mapped scatter colours are only final after a draw
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=50)
        png = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    except Exception:
        pass
    axes = []
    for ax in list(getattr(fig, "axes", [])):
        entry = {}
        for key, extract in AXES_EXTRACTORS.items():
            try:
                entry[key] = extract(ax)
            except Exception:
                entry[key] = None
        axes.append(entry)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:
        pass
    shapes = [(a["grid"]["nrows"], a["grid"]["ncols"]) for a in axes if isinstance(a["grid"], dict)]
    nrows, ncols = max(shapes, key=shapes.count) if shapes else (None, None)  # ties: the first axes' grid
    return {"figure": True, "suptitle": _text(getattr(fig, "_suptitle", None)), "axes": axes, "naxes": len(axes),
            "colorbars": sum(a["colorbar"] is True for a in axes),
            "grid": {"nrows": nrows, "ncols": ncols} if shapes else None, "png": png}


def _floats(values):
    """Any array-like -> a plain float64 ndarray; masked entries become NaN."""
    import numpy as np

    return np.ma.filled(np.ma.asarray(values).astype(np.float64), np.nan)


def _text(artist) -> str:
    return str(artist.get_text()) if artist is not None else ""


def _each(artists, read) -> list:
    """read(artist) for every artist; None for one that cannot be read, so the others still cross."""
    out = []
    for artist in artists:
        try:
            out.append(read(artist))
        except Exception:
            out.append(None)
    return out


def _lines(ax) -> list:
    """Line2D (plot, semilogy, ...): [{label, x: (k,), y: (k,)}]."""
    return _each(ax.get_lines(), lambda line: {"label": str(line.get_label()), "x": _floats(line.get_xdata()),
                                               "y": _floats(line.get_ydata())})


def _bars(ax):
    """Rectangle patches (bar, hist): (k, 3) rows of [x, width, height]."""
    import numpy as np
    from matplotlib.patches import Rectangle

    bars = [[p.get_x(), p.get_width(), p.get_height()] for p in ax.patches if isinstance(p, Rectangle)]
    return np.asarray(bars, dtype=np.float64).reshape(-1, 3)


def _legend(ax) -> list:
    legend = ax.get_legend()
    return [_text(t) for t in legend.get_texts()] if legend is not None else []


def _mapped(artist) -> dict:
    """Colour mapping of an image or mesh: colormap name, norm class, clim and whether a colorbar shows it."""
    vmin, vmax = artist.get_clim()
    return {"cmap": str(artist.get_cmap().name), "norm": type(artist.norm).__name__,
            "vmin": None if vmin is None else float(vmin), "vmax": None if vmax is None else float(vmax),
            "has_colorbar": getattr(artist, "colorbar", None) is not None}


def _images(ax) -> list:
    """AxesImage (imshow, matshow): array (H, W) or (H, W, 3|4) as float64, extent [left, right, bottom, top]."""
    def read(im):
        a = im.get_array()
        return {"array": None if a is None else _floats(a), "extent": [float(v) for v in im.get_extent()],
                "interpolation": str(im.get_interpolation()), **_mapped(im)}

    return _each(ax.get_images(), read)


def _meshes(ax) -> list:
    """QuadMesh (pcolormesh, a colorbar's own colour strip): the mapped values as float64."""
    from matplotlib.collections import QuadMesh

    def read(mesh):
        a = mesh.get_array()
        return {"array": None if a is None else _floats(a), **_mapped(mesh)}

    return _each([c for c in ax.collections if isinstance(c, QuadMesh)], read)


def _scatter(ax) -> list:
    """PathCollection (scatter): offsets (k, 2), facecolors (k, 4) RGBA, values (k,) from `c=` or None, sizes."""
    import numpy as np
    from matplotlib.collections import PathCollection

    def read(coll):
        coll.update_scalarmappable()  # `c=values` become facecolors only here (or at draw time)
        offsets = _floats(coll.get_offsets()).reshape(-1, 2)  # (k, 2)
        colors = _floats(coll.get_facecolors()).reshape(-1, 4)
        if len(colors) == 1:  # one colour for all points
            colors = np.repeat(colors, len(offsets), axis=0)  # (k, 4)
        values = coll.get_array()
        return {"offsets": offsets, "facecolors": colors, "values": None if values is None else _floats(values),
                "sizes": _floats(coll.get_sizes()), "label": str(coll.get_label()),
                "has_colorbar": getattr(coll, "colorbar", None) is not None}

    return _each([c for c in ax.collections if isinstance(c, PathCollection)], read)


def _texts(ax) -> list:
    """Text drawn with ax.text or ax.annotate: [{text, x, y}], (x, y) where the text sits."""
    def read(t):
        x, y = t.get_position()
        return {"text": _text(t), "x": float(x), "y": float(y)}

    return _each(ax.texts, read)


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None or hasattr(ax, "_colorbar_info")


def _has_colorbar(ax) -> bool:
    """A colorbar shows one of this axes' images, meshes or scatters."""
    return any(getattr(m, "colorbar", None) is not None for m in list(ax.images) + list(ax.collections))


def _grid(ax):
    """{nrows, ncols, row, col, rowspan, colspan} of the axes in its gridspec; None for a colorbar or add_axes.

    fig.colorbar(im) re-seats the parent axes in a small gridspec beside the bar, so walk back out of the
    gridspecs made for this axes' colorbars to the position the student chose.
    """
    ss = ax.get_subplotspec()
    if ss is None or _is_colorbar(ax):
        return None
    bar_grids = [cax.get_subplotspec().get_gridspec() for cax in getattr(ax, "_colorbars", [])
                 if cax.get_subplotspec() is not None]
    while any(ss.get_gridspec() is g for g in bar_grids):
        ss = ss.get_gridspec()._subplot_spec
    nrows, ncols = ss.get_gridspec().get_geometry()
    return {"nrows": int(nrows), "ncols": int(ncols), "row": int(ss.rowspan.start), "col": int(ss.colspan.start),
            "rowspan": len(ss.rowspan), "colspan": len(ss.colspan)}


# One row per key of an axes' entry: a new kind of artist is one function and one row here.
AXES_EXTRACTORS = {
    "title": lambda ax: str(ax.get_title()),
    "xlabel": lambda ax: str(ax.get_xlabel()),
    "ylabel": lambda ax: str(ax.get_ylabel()),
    "xscale": lambda ax: str(ax.get_xscale()),
    "yscale": lambda ax: str(ax.get_yscale()),
    "lines": _lines,
    "bars": _bars,
    "legend": _legend,
    "images": _images,
    "meshes": _meshes,
    "scatter": _scatter,
    "xticks": lambda ax: _floats(ax.get_xticks()),
    "yticks": lambda ax: _floats(ax.get_yticks()),
    "xticklabels": lambda ax: [_text(t) for t in ax.get_xticklabels()],
    "yticklabels": lambda ax: [_text(t) for t in ax.get_yticklabels()],
    "texts": _texts,
    "grid": _grid,
    "colorbar": _is_colorbar,
    "has_colorbar": _has_colorbar,
}
