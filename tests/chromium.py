"""How Debian's Chromium is launched here, shared by the browser tests and the benchmarks.

Playwright drives it through ``executable_path``; no browser is ever downloaded.
Also shared: how a page finds the explorer's spectrogram among Bokeh's views.
"""

import os

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the closed network refuses Chromium's own connections
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# A JavaScript expression: the spectrogram's Bokeh view, the laid-out figure with the tallest frame
# (undefined until one is laid out).
MAIN_FIGURE = """[...Bokeh.index.all_views()]
    .filter((v) => v.model.type === "Figure" && v.frame)
    .sort((a, b) => b.frame.bbox.height - a.frame.bbox.height)[0]"""
