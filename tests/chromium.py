"""How Debian's Chromium is launched here, shared by the browser tests and benchmarks/browser.py.

Playwright drives it through ``executable_path``; no browser is ever downloaded.
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
