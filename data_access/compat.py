"""Every reliance of this project on another library's private behaviour, in one register.

A mend of a fault in a library under the app, or a use of something a library
does not promise to keep, is a :class:`Patch` in :data:`PATCHES`: the library,
the versions it was made and tested for (``pyproject.toml`` pins the upper
bounds), the private thing it relies on, the upstream issue it stands for, and
the canary test that says when it can go. Nothing private is touched unless
:meth:`Patch.usable` says yes: it checks the installed version and that the
private thing still exists, and if not, the log says so once and the code goes
the library's public way (or, for :data:`BASIC_LOGIN`, a server that needs it
does not start: :func:`require`).

The register lives at the bottom of the package tree, imports no library at
module level (each check imports what it looks at), and is usable from
every layer; today its patches are the dashboard's (:mod:`dashboard.fixes`,
applied once at start-up by :func:`dashboard.fixes.apply_patches`, and
:mod:`dashboard.login`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from data_access.errors import ParameterError

log = logging.getLogger("spectral_atlas")


@dataclass(frozen=True)
class Patch:
    """One reliance on a library's private behaviour (see the module's docstring).

    Attributes
    ----------
    name : str
        Short name, in the log.
    library : str
        The distribution relied on (``panel``), whose installed version is checked.
    versions : str
        The versions the patch was made and tested for (a PEP 440 specifier).
    relies_on : str
        The private thing used, as the log names it.
    exists : callable
        Whether that thing is still there (no argument; True or False).
    upstream : str
        The upstream issue (or, where none was found, what to report).
    canary : str
        The test that fails once the patch is no longer needed or no longer works.
    """

    name: str
    library: str
    versions: str
    relies_on: str
    exists: Callable[[], bool]
    upstream: str
    canary: str

    def usable(self) -> bool:
        """Whether the installed library is one the patch was made for and still has what it relies on.

        The first answer is kept; a False one is logged once, with what to look at.
        """
        if self.name not in _USABLE:
            try:
                installed = importlib.metadata.version(self.library)
            except importlib.metadata.PackageNotFoundError:  # (ipykernel: no notebook here, nothing to mend)
                _USABLE[self.name] = False
                return False
            if installed not in SpecifierSet(self.versions):
                why = f"{self.library} {installed} is not one of the versions it was made for ({self.versions})"
            elif not _safely(self.exists):
                why = f"{self.library} {installed} has no {self.relies_on} any more"
            else:
                why = None
            if why:
                log.warning("compat: not applying %s: %s; see %s and %s", self.name, why, self.upstream, self.canary)
            _USABLE[self.name] = why is None
        return _USABLE[self.name]


_USABLE: dict[str, bool] = {}


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except (AttributeError, ImportError, KeyError, TypeError):
        return False


def _has(module: str, *names: str) -> Callable[[], bool]:
    """A check that ``module`` has each of ``names`` (dotted: an attribute of an attribute)."""

    def check() -> bool:
        found = importlib.import_module(module)
        for name in names:
            obj = found
            for part in name.split("."):
                obj = getattr(obj, part)
        return True

    return check


def _basic_login_validate() -> bool:
    from panel.auth import BasicLoginHandler

    return (
        callable(getattr(BasicLoginHandler, "_validate", None))
        and "_validate" in BasicLoginHandler.post.__code__.co_names
    )


def _bokeh_stream_callbacks() -> bool:
    import holoviews as hv
    import holoviews.plotting.bokeh  # noqa: F401  (registers its streams' callbacks)

    return isinstance(hv.streams.Stream._callbacks.get("bokeh"), dict)


def _template_variables() -> bool:
    from bokeh.document import Document

    return isinstance(getattr(Document(), "_template_variables", None), dict)


QUEUED_MESSAGES = Patch(
    "send-every-queued-message",
    library="panel",
    versions=">=1.9,<1.10",
    relies_on="panel.io.document._dispatch_msgs, _WRITE_BLOCK and _WRITE_MSGS",
    exists=_has("panel.io.document", "_dispatch_msgs", "_WRITE_BLOCK", "_WRITE_MSGS"),
    upstream="no Panel issue found (searched 2026-12-05): to report with test_compat's reproduction",
    canary="tests/test_compat.py::test_without_the_mend_panel_leaves_it_queued",
)
GESTURE_STREAM = Patch(
    "gesture-range-stream",
    library="holoviews",
    versions=">=1.19,<1.24",
    relies_on="holoviews.streams.Stream._callbacks (a stream's Bokeh callback, by stream class)",
    exists=_bokeh_stream_callbacks,
    upstream="holoviz/holoviews#6672 (RangeXY's 100 ms debounce, with no way to turn it off)",
    canary="tests/test_compat.py::test_holoviews_still_waits_after_a_gesture",
)
EARLY_COMM_MESSAGES = Patch(
    "keep-early-comm-messages",
    library="ipykernel",
    versions=">=6.29,<8",
    relies_on="the kernel's shell_handlers['comm_msg'/'comm_open'] and comm_manager.comms",
    exists=_has("ipykernel.kernelbase", "Kernel"),
    upstream="no pyviz_comms (3.0.6) issue found (searched 2026-12-05): to report with test_compat's reproduction",
    canary="tests/test_compat.py::test_without_the_mend_the_kernel_drops_it",
)
LONG_PRESS = Patch(
    "drags-always-pan",
    library="bokeh",
    versions=">=3.9,<3.10",
    relies_on="BokehJS's core/ui_gestures UIGestures.press_threshold (checked in the page too)",
    exists=lambda: True,  # (a JavaScript module: the page's code checks it is there)
    upstream="no Bokeh issue found (searched 2026-12-05): a drag after the pointer rests 300 ms is taken for a press",
    canary="tests/test_browser.py::test_a_drag_after_the_pointer_rested_still_pans",
)
LOCAL_STYLESHEETS = Patch(
    "local-stylesheets",
    library="bokeh",
    versions=">=3.9,<3.10",
    relies_on="bokeh.document.Document._template_variables['dist_url'] (Panel's own use of it)",
    exists=_template_variables,
    upstream="holoviz/panel#7073 (stylesheets from cdn.holoviz.org on a closed network)",
    canary="tests/test_browser.py::test_a_page_whose_websocket_comes_late_styles_itself_from_this_server",
)
PAGE_ONLY_PLAYHEAD = Patch(
    "page-only-playhead",
    library="bokeh",
    versions=">=3.9,<3.10",
    relies_on="BokehJS's HasProps.setv(..., {sync: false}) and Bokeh.index.find_one (checked in the page too)",
    exists=lambda: True,  # (JavaScript: the page's code checks they are there)
    upstream=(
        "no Bokeh issue found (searched 2026-12-05): BokehJS has no public way to change a model in the page "
        "without sending the change to the server (a playhead moved 60 times a second would be 60 messages)"
    ),
    canary="tests/test_listen_app.py::test_play_moves_the_playhead_with_the_sound_and_space_pauses",
)
BASIC_LOGIN = Patch(
    "basic-login-validate",
    library="panel",
    versions=">=1.9,<1.10",
    relies_on="panel.auth.BasicLoginHandler._validate, called by its post()",
    exists=_basic_login_validate,
    upstream="holoviz/panel#4703 (a mistyped --basic-auth file name becomes the password)",
    canary="tests/test_login.py::test_a_credentials_file_that_breaks_while_running_lets_nobody_in",
)

#: Every patch, by name.
PATCHES = {
    p.name: p
    for p in (
        QUEUED_MESSAGES,
        GESTURE_STREAM,
        EARLY_COMM_MESSAGES,
        LONG_PRESS,
        LOCAL_STYLESHEETS,
        PAGE_ONLY_PLAYHEAD,
        BASIC_LOGIN,
    )
}


def require(patch: Patch, needed_by: str) -> None:
    """Stop unless ``patch`` is usable: ``needed_by`` (an option) is not safe without it.

    Raises
    ------
    ParameterError
        Naming the option, the library and what it lacks.
    """
    if not patch.usable():
        installed = importlib.metadata.version(patch.library)
        raise ParameterError(
            f"{needed_by} needs {patch.relies_on}, which {patch.library} {installed} may not have "
            f"(made for {patch.versions}): install spectral-atlas's pinned versions"
        )
