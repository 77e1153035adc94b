"""Matplotlib without a display, set up in one place for every stage that draws."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def figure(path: Path, *, size: tuple[float, float] = (6, 4), xlabel: str = "", ylabel: str = "",
           title: str = "") -> Iterator:
    """Yield an Axes; on exit the figure is labelled, saved as PNG to `path` and closed."""
    import matplotlib

    matplotlib.use("Agg")  # headless: login and compute nodes have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
