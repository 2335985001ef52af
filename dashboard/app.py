"""``panel serve dashboard/app.py --args STORE [STORE ...]``: the explorer served by Panel's own command.

The explorer is :mod:`dashboard.explorer`; the server around it (``spectral-atlas
serve``) is :mod:`dashboard.server`. Importing this module has no side effects
outside ``panel serve``; it re-exports the public names for older imports.
"""

from __future__ import annotations

import sys

import panel as pn

from dashboard.explorer import Selection, SpectrogramExplorer
from dashboard.fixes import apply_patches
from dashboard.server import StorePicker, explorer_page, one_blas_thread, page_template, serve, served_extension
from data_access.query import warm_up

__all__ = ["Selection", "SpectrogramExplorer", "StorePicker", "explorer_page", "serve"]

if pn.state.served:  # a plain import has no side effects
    served_extension()
    if not sys.argv[1:]:
        raise SystemExit("usage: panel serve dashboard/app.py --args STORE [STORE ...]")
    apply_patches()
    one_blas_thread()
    warm_up()
    page_template(explorer_page(sys.argv[1:])).servable()
