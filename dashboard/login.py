"""The login of ``spectral-atlas serve --basic-auth``, and the headers of every served page.

Panel's own basic login (``panel.auth.BasicAuthProvider``) reads ``--basic-auth`` as a
credentials file only while a file is at that path: a path mistyped, or a file moved
away, became the password of every user name. :class:`LoginProvider` keeps Panel's
pages and cookies and changes who gets in:

- a credentials file is read again whenever it changes; while it is missing,
  unreadable or not JSON (half written), nobody gets in: a login is answered 503 in
  one line, pages go back to the login, and the error is logged (once, until it changes);
- a user taken out of the file is sent to the login at their next page load, and a page
  of theirs cannot open its websocket (one already open stays open until the page closes);
- a client (its address) that failed ``attempts`` logins within ``window`` seconds is
  answered 429 until the oldest of them is that old, whatever the password;
- with ``secure_cookies``, the login's cookies are marked ``Secure``; they are always
  ``HttpOnly`` and ``SameSite=Lax``.

:class:`SecurityHeaders` adds the headers of :data:`SECURITY_HEADERS` to every
response of the server, with or without a login.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import time
from collections import OrderedDict, deque

from panel.auth import BasicAuthProvider, BasicLoginHandler
from panel.auth import LogoutHandler as PanelLogoutHandler
from panel.config import config
from tornado.web import OutputTransform

from dashboard.options import read_users
from data_access.compat import BASIC_LOGIN, require

log = logging.getLogger("spectral_atlas")

SECURITY_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    # No script-src: Bokeh and Panel pages run inline scripts and build functions from strings.
    "Content-Security-Policy": "frame-ancestors 'self'; object-src 'none'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Headers of every response: no framing by other sites, no plugins, no MIME sniffing, no referrer outside."""

CLIENTS = 10_000
"""Clients whose failed logins are remembered; beyond, the least recently failed is forgotten."""


class SecurityHeaders(OutputTransform):
    """Adds :data:`SECURITY_HEADERS` to a response (a tornado transform: ``Application(transforms=[...])``)."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        """The response's status, headers (with ours, unless the handler set its own) and first chunk."""
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        return status_code, headers, chunk


class LoginUnavailable(Exception):
    """The credentials file cannot be used: nobody can log in."""


class Credentials:
    """Who may log in: the users of a credentials file, or anyone with the one password.

    Parameters
    ----------
    users_file : str, optional
        A JSON file of ``{"user": "password", ...}``, read again whenever it changes.
    password : str, optional
        The password of every user name, without a file.
    """

    def __init__(self, users_file: str | None = None, password: str | None = None) -> None:
        self.users_file, self.password = users_file, password
        self._users: dict[str, str] = {}
        self._stat: tuple | None = None  # the file as last read
        self._error: str | None = None  # why it cannot be used, as last logged

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s.

        Raises
        ------
        LoginUnavailable
            The credentials file cannot be read or is not a credentials file.
        """
        expected = self.password if self.users_file is None else self._read().get(user)
        return expected is not None and hmac.compare_digest(password.encode(), expected.encode())

    def knows(self, user: str) -> bool:
        """Whether ``user`` may still be logged in (False while the file cannot be read)."""
        if self.users_file is None:
            return True
        try:
            return user in self._read()
        except LoginUnavailable:
            return False

    def _read(self) -> dict[str, str]:
        try:
            stat = os.stat(self.users_file)
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = None  # (read_users says why)
        try:
            if key is None or key != self._stat:
                self._stat, self._users = None, {}
                self._users, self._stat = read_users(self.users_file), key
        except ValueError as err:
            if str(err) != self._error:
                log.warning("credentials file %s cannot be used (%s): nobody can log in", self.users_file, err)
                self._error = str(err)
            raise LoginUnavailable(str(err)) from None
        if self._error is not None:
            log.warning("credentials file %s can be read again", self.users_file)
            self._error = None
        return self._users


class Attempts:
    """Failed logins per client in a sliding window, for the :data:`CLIENTS` that failed last.

    Parameters
    ----------
    limit : int
        Failed logins a client may make within ``window`` seconds.
    window : float
        Seconds a failed login counts.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failed: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds before ``client`` may try again (0: now)."""
        times = self._failed.get(client)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - time.monotonic())

    def failed(self, client: str) -> bool:
        """Count a failed login of ``client``; True if it must now wait."""
        times = self._failed.pop(client, None) or deque(maxlen=self.limit)
        times.append(time.monotonic())
        self._failed[client] = times  # the most recent last
        while len(self._failed) > CLIENTS:
            self._failed.popitem(last=False)
        return self.wait(client) > 0


class _CookieFlags:
    """A handler's cookies ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` with the provider's ``secure_cookies``."""

    def set_cookie(self, name, value, *args, **kwargs):
        kwargs.setdefault("httponly", True)
        kwargs.setdefault("samesite", "Lax")
        kwargs["secure"] = kwargs.get("secure") or self.application.auth_provider.secure_cookies
        super().set_cookie(name, value, *args, **kwargs)


class LoginHandler(_CookieFlags, BasicLoginHandler):
    """Panel's login page, checking passwords with the provider's :class:`Credentials` and :class:`Attempts`."""

    def post(self):
        """Log in (a redirect to the page, or back to the login), or refuse: 429 while limited, 503 without users."""
        provider, client = self.application.auth_provider, self.request.remote_ip
        wait = provider.attempts.wait(client)
        if wait:
            self.set_header("Retry-After", str(math.ceil(wait)))
            return self._refuse(429, f"Too many failed logins from your address: try again in {math.ceil(wait)} s.")
        try:
            super().post()
        except LoginUnavailable:
            self._refuse(503, "Login is unavailable: the server cannot read its list of users; tell its operator.")

    # Panel's BasicLoginHandler.post checks a login by calling self._validate(username, password), which
    # reads --basic-auth itself (a path it cannot read became a password): replaced here (compat.BASIC_LOGIN).
    def _validate(self, username, password):
        provider, client = self.application.auth_provider, self.request.remote_ip
        if provider.credentials.check(username, password):
            log.info("login of %r from %s", username, client)
            return True
        if provider.attempts.failed(client):
            log.warning(
                "%d failed logins from %s within %g s (the last as %r): its logins are refused for a while",
                provider.attempts.limit, client, provider.attempts.window, username[:100],
            )  # fmt: skip
        else:
            log.info("failed login as %r from %s", username[:100], client)
        return False

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")


class LogoutHandler(_CookieFlags, PanelLogoutHandler):
    """Panel's logout page; the cookies it clears carry the same flags as the login's."""


class LoginProvider(BasicAuthProvider):
    """Panel's basic login (its pages and cookies), with our :class:`Credentials`, :class:`Attempts` and cookie flags.

    Parameters
    ----------
    users_file : str, optional
        A credentials file (by absolute path), read again whenever it changes.
    password : str, optional
        The password of every user name, without a file.
    attempts : int
        Failed logins a client may make within ``window`` seconds before it must wait.
    window : float
        Seconds a failed login counts.
    secure_cookies : bool
        Mark the cookies ``Secure`` (a server reached over HTTPS only).
    """

    def __init__(
        self,
        *,
        users_file: str | None = None,
        password: str | None = None,
        attempts: int = 10,
        window: float = 60.0,
        secure_cookies: bool = False,
    ) -> None:
        require(BASIC_LOGIN, "--basic-auth")  # LoginHandler._validate replaces Panel's: without it, Panel's would run
        super().__init__()
        self.credentials = Credentials(users_file, password)
        self.attempts = Attempts(attempts, window)
        self.secure_cookies = secure_cookies

    @property
    def get_user(self):
        """Panel's ``get_user(handler)``, which also says None to a user no longer in the credentials file."""
        panel_get_user = super().get_user

        def get_user(handler):
            user = handler.get_secure_cookie("user", max_age_days=config.oauth_expiry)
            if user and not self.credentials.knows(user.decode()):
                return None  # taken out of the credentials file (or it cannot be read): log in again
            return panel_get_user(handler)

        return get_user

    @property
    def login_handler(self):
        """Our :class:`LoginHandler` (Panel's login page and form)."""
        return LoginHandler

    @property
    def logout_handler(self):
        """Our :class:`LogoutHandler` (Panel's logout page)."""
        return LogoutHandler
