"""Serving the explorer: the store picker, the page around it, and ``spectral-atlas serve``.

The explorer itself (:mod:`dashboard.explorer`) knows nothing of servers; here
are the catalog of stores a page may open, the page template, the login and
session options (:class:`~dashboard.options.ServerOptions`, written once), and
the process's bookkeeping (sessions counted, forked workers that exit with
their parent).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import pandas as pd
import panel as pn
import param
from panel.io.resources import get_dist_path
from threadpoolctl import threadpool_limits

from dashboard.catalog import Catalog
from dashboard.explorer import SpectrogramExplorer, shared_atlas
from dashboard.failures import failed_page, report, report_session_failures
from dashboard.fixes import apply_patches, drags_always_pan, use_local_stylesheets
from dashboard.listen import serve_audio_files
from dashboard.login import SecurityHeaders
from dashboard.messages import Message
from dashboard.options import ServerOptions
from dashboard.session import release
from data_access.annotations import open_annotations
from data_access.query import warm_up

log = logging.getLogger("spectral_atlas")


class StorePicker(pn.viewable.Viewer):
    """The explorer of one store at a time, with a selector and a listing when several are offered.

    Parameters
    ----------
    stores : list of str, or Catalog
        Store paths, or a :class:`~dashboard.catalog.Catalog` of stores and data roots.
    store : str, optional
        Name of the store to show first (the page's ``?store=NAME``). A name the
        catalog does not list is never read as a path: the first store is shown,
        with a warning on the page.
    annotations : str, optional
        One selection database for every store (``serve --annotations``); default
        ``ANNOTATIONS.sqlite`` beside each local store.
    listening : dict, optional
        What every explorer plays from: ``audio_root`` and ``max_play_seconds``
        (``serve --audio-root``, ``--max-play-seconds``; see :class:`~dashboard.explorer.SpectrogramExplorer`).
    """

    explorer = param.ClassSelector(class_=SpectrogramExplorer, doc="The explorer shown.")

    def __init__(
        self,
        stores: list[str] | Catalog,
        *,
        store: str | None = None,
        annotations: str | None = None,
        listening: dict | None = None,
        **params,
    ) -> None:
        super().__init__(**params)
        self.annotations = annotations
        self.listening = dict(listening or {})
        catalog = stores if isinstance(stores, Catalog) else Catalog(stores=stores)
        path = str(catalog.get(store) or catalog.entries[0].path)
        self.catalog = catalog
        self.message = Message("store-message", kind="warning")
        self.select = pn.widgets.Select(label="store", options=self._options(), value=path, width=300)
        self.listing = pn.pane.DataFrame(self._table(), index=False, sizing_mode="stretch_width")
        self.explorer = self._explorer(path)
        self.select.param.watch(lambda event: self._open(event.new), "value")
        if store is not None and catalog.get(store) is None:
            self._refuse(store)

    def pick_store(self, name: str | None) -> str | None:
        """Show the store listed as ``name``.

        Returns
        -------
        str or None
            The path of the store now shown, or None if the catalog lists no store
            as ``name``: the store shown stays, and the page says so.
        """
        path = self.catalog.get(name)
        if path is None:
            self._refuse(name)
            return None
        self.select.value = str(path)  # opens it (through the selector's watcher)
        return str(path)

    def refresh(self) -> None:
        """Scan the catalog again: new stores under the data roots appear, removed ones go."""
        self.catalog.scan()
        self.select.options = self._options()
        self.listing.object = self._table()

    def _explorer(self, path: str) -> SpectrogramExplorer:
        # A page's link names the store when there is a choice of stores (the catalog's name, never a path).
        single = len(self.catalog.stores) == 1 and not self.catalog.roots
        name = None if single else self.catalog.name_of(path)
        return SpectrogramExplorer(
            path, link_name=name, header=self._picker(single), annotations=self.annotations, **self.listening
        )

    def _picker(self, single: bool) -> list[pn.viewable.Viewable]:
        """What the explorer's controls column shows first: the store selector and listing, and the message."""
        if single:
            return [self.message]
        refresh = pn.widgets.Button(label="refresh", width=80, align="end", css_classes=["store-refresh"])
        refresh.on_click(lambda event: self.refresh())
        several = len(self.catalog.entries) > 1  # a choice to make: the listing is open
        listing = pn.Card(self.listing, title="stores", collapsed=not several, sizing_mode="stretch_width")
        return [pn.Row(self.select, refresh), listing, self.message]

    def _options(self) -> dict[str, str]:
        return {entry.name: str(entry.path) for entry in self.catalog.entries}

    def _table(self) -> pd.DataFrame:
        rows = [
            (e.name, e.start_time[:19], e.end_time[:19], f"{e.duration_seconds / 3600:.2f} h")
            for e in self.catalog.entries
        ]
        return pd.DataFrame(rows, columns=["store", "start (UTC)", "end (UTC)", "duration"])

    def _open(self, path: str) -> None:
        if path == self.explorer.store:  # (the selector put back after a store that would not open)
            return
        name = self.catalog.name_of(path)
        if name is None:  # a value the listing does not hold (a forged widget message): open nothing
            self._refuse(path)
            return
        try:
            explorer = self._explorer(path)
        except Exception as error:  # changed or removed since it was listed: the store shown stays
            report(error, self.explorer.state, f"open the store {name}")
            self.select.value = self.explorer.store
            return
        old, self.explorer = self.explorer, explorer
        release(old.state)  # the explorer closed: its watchers go with it
        old.close()  # (its database, and its reading of the others' changes)
        self.message.clear()

    def _refuse(self, name: object) -> None:
        log.warning("refused store %r: the catalog lists no store by that name", name)
        shown = self.catalog.name_of(self.explorer.store)
        # The name is the visitor's text: a message is text, never markup. The link names the store shown.
        self.message.say(f"No store is listed as {repr(name)[:120]}; showing {shown}.")

    @param.depends("explorer")
    def _shown(self) -> SpectrogramExplorer:
        return self.explorer

    def __panel__(self) -> pn.viewable.Viewable:
        # The store picker sits in the explorer's controls column: the plots keep the window's height.
        return pn.Column(self._shown, sizing_mode="stretch_width")


def explorer_page(
    stores: list[str] | Catalog, *, annotations: str | None = None, listening: dict | None = None
) -> StorePicker:
    """The served page's content: see :class:`StorePicker`; the page's ``?store=NAME`` picks the store shown."""
    store = pn.state.session_args.get("store")  # the request's arguments, URL-decoded by tornado
    return StorePicker(
        stores if isinstance(stores, Catalog) else list(stores),
        store=store[0].decode(errors="replace") if store else None,
        annotations=annotations,
        listening=listening,
    )


def page_template(content: pn.viewable.Viewable) -> pn.template.BootstrapTemplate:
    """The served page around ``content``.

    Bootstrap rather than Fast: the Fast design fetches a web font from a CDN,
    which a server on a closed network (a ship, an observatory) cannot reach.
    No busy indicator in the header: Panel's follows the whole process's busy
    flag, so every open page was sent a change, and turned its spinner, while any
    one session was answered (with 20 sessions the pages' spinners took more CPU
    than the server). The explorer's own "reading…" indicator is per session.
    """
    drags_always_pan()
    return pn.template.BootstrapTemplate(
        title="Spectral Atlas", main=[content], header_background="#0b3d5c", busy_indicator=None
    )


def one_blas_thread() -> None:
    """Run BLAS on one thread in this server process.

    The band curves' one matrix product per gesture (bands x bins by bins x columns)
    ran on OpenBLAS's two spin-waiting threads: 23.5 ms of CPU, against 1.1 ms on one
    thread; the server's CPU per gesture fell 16-23 % with one (``benchmarks/browser.py``
    with and without ``OPENBLAS_NUM_THREADS=1``). A server answers many sessions at
    once: its parallelism is across them, not inside one product.
    """
    threadpool_limits(1, user_api="blas")


def served_extension() -> None:
    """Panel's extension as a served page needs it: its JavaScript and styles from this server, none from a CDN.

    And a failure in a session's callbacks is one line on its page, the traceback in the log (dashboard.failures).
    """
    use_local_stylesheets(get_dist_path(cdn=False))  # (see there: a session discarded early styled itself from a CDN)
    pn.extension("tabulator", sizing_mode="stretch_width", inline=True)  # (the selections table)
    report_session_failures()


def serve(stores: list[str] = (), **options) -> None:
    """Serve the explorer until interrupted (``spectral-atlas serve``).

    Parameters
    ----------
    stores : list of str
        Stores offered by path or fsspec URL; the first is shown unless ``?store=NAME`` names another.
    **options
        :class:`~dashboard.options.ServerOptions`, by name: ``data_root`` (directories whose
        stores, at any depth, are listed and offered), ``annotations`` (one selection database
        for every store), ``audio_root`` and ``max_play_seconds`` (what the player reads), ``port``, ``address``,
        ``allow_websocket_origin``, ``prefix``, ``num_procs``, ``show``,
        ``unused_session_lifetime``, ``check_unused_sessions`` and the login options
        (``basic_auth``, ``cookie_secret``, ``oauth_*``). They go to :func:`panel.serve`
        and on to Bokeh's server as they are, once checked to fit together.

    Raises
    ------
    ParameterError
        Options that do not fit together, such as a login without a cookie secret.
    SourceNotFoundError, FormatError
        A store or data root that does not exist or is no store.
    """
    opts = ServerOptions(**options)
    apply_patches()  # (data_access.compat: the log says which do not fit the installed libraries)
    catalog = Catalog(stores=stores, roots=opts.data_root)  # a bad path fails before the server starts
    if opts.annotations is not None:  # not a database of ours: one line before the server starts
        open_annotations(opts.annotations, readonly=True).close()
    listening = {"audio_root": opts.audio_root, "max_play_seconds": opts.max_play_seconds}
    # The prepared audio's folder and route (made before the processes fork: each answers from it).
    audio_routes = serve_audio_files(opts.prefix)
    if opts.num_procs == 1:
        one_blas_thread()
        shared_atlas(str(catalog.entries[0].path), opts.audio_root)  # the first page opens at once
        warm_up()
    else:  # Bokeh forks the processes: nothing may start OpenMP threads before (datashader's kernels do)
        os.register_at_fork(after_in_child=_in_forked_process)
    origins = opts.allow_websocket_origin or [f"{opts.address}:{opts.port}", f"localhost:{opts.port}"]

    def page():
        served_extension()
        _SESSIONS.opened()
        pn.state.on_session_destroyed(_SESSIONS.closed)
        try:
            content = explorer_page(catalog, annotations=opts.annotations, listening=listening)
        except Exception as error:  # the visitor reads one line; the log has the traceback
            content = failed_page(error)
        return page_template(content)

    pn.serve(
        page,
        port=opts.port,
        address=opts.address,
        websocket_origin=origins,
        show=opts.show,
        title="Spectral Atlas",
        num_procs=opts.num_procs,
        unused_session_lifetime_milliseconds=opts.unused_session_lifetime,
        check_unused_sessions_milliseconds=opts.check_unused_sessions,
        use_xheaders=opts.use_xheaders,
        transforms=[SecurityHeaders],  # tornado's Application(transforms=...): every response gets the headers
        extra_patterns=audio_routes,  # the player's audio files, with HTTP ranges (dashboard.listen)
        **({"prefix": opts.prefix} if opts.prefix else {}),
        **opts.login_options(),
    )


class _SessionCount:
    """Open sessions of this process, logged as each opens and closes (an operator sees they are released)."""

    def __init__(self) -> None:
        self.open = 0
        self._lock = threading.Lock()

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            log.info("session opened; sessions open: %d", self.open)

    def closed(self, session_context) -> None:
        with self._lock:
            self.open -= 1
            log.info("session closed; sessions open: %d", self.open)


_SESSIONS = _SessionCount()


def _in_forked_process() -> None:
    """In each server process Bokeh forks: compile the kernels, and exit once the parent is gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    one_blas_thread()
    warm_up()
