"""Spectral Atlas dashboard: the explorer component, its served app and the console script.

``from dashboard import SpectrogramExplorer; SpectrogramExplorer("demo.zarr")``
shows the explorer in a notebook cell (see :mod:`dashboard.explorer`).

Everything here sits on top of :mod:`data_access`; nothing in ``data_access``
imports from this package.
"""

__all__ = ["Selection", "SpectrogramExplorer"]


def __getattr__(name: str):
    # Imported on first use: the console script (dashboard.cli) starts without loading Panel.
    if name in __all__:
        from dashboard import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
