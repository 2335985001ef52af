"""The server's options, written once: the ``spectral-atlas serve`` flags and :func:`dashboard.server.serve`'s keywords.

No Panel import at module level: the console script builds its parser from
:class:`ServerOptions` without loading Panel.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from data_access import ParameterError


def _option(default, help: str, *, metavar: str | None = None, group: str = "server", repeat: bool = False, **kw):
    """A field with what its command-line flag needs (its name with ``--`` and dashes)."""
    meta = {"help": help, "metavar": metavar, "group": group, "repeat": repeat, **kw}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """How a server runs; checked as a whole when made, so a misconfigured service stops at start-up.

    Raises
    ------
    ParameterError
        Options that do not fit together (a login without a cookie secret, OAuth
        settings without a provider, a credentials file that is not one, ...).
    """

    data_root: list[str] = _option(
        [], "offer every store under DIR, listed with its time span (repeatable); nothing else can be opened",
        metavar="DIR", repeat=True,
    )  # fmt: skip
    annotations: str | None = _option(
        None, "the selection database of every store served (default: ANNOTATIONS.sqlite beside each local "
        "store); for stores opened by URL, and data roots that cannot be written", metavar="FILE",
    )  # fmt: skip
    audio_root: str | None = _option(
        None, "where the stores' recordings are, if they moved since the ingest (looked for by their path "
        "relative to the folder they shared, then by name); where none is found, what is played is reconstructed "
        "from the spectrogram, and says so", metavar="DIR",
    )  # fmt: skip
    max_play_seconds: float = _option(
        600.0, "the most of a recording played or saved from the page at once (default: 600)",
        metavar="SECONDS", type=float,
    )  # fmt: skip
    port: int = _option(5006, "port (default: 5006)", type=int)
    address: str = _option("127.0.0.1", "address to listen on (default: 127.0.0.1)")
    allow_websocket_origin: list[str] = _option(
        [], "host of the pages allowed to connect, e.g. the proxy's public name (repeatable; default: ADDRESS:PORT)",
        metavar="HOST[:PORT]", repeat=True,
    )  # fmt: skip
    prefix: str | None = _option(None, "URL path to answer under behind a reverse proxy, e.g. /atlas", metavar="PATH")
    num_procs: int = _option(1, "server processes (0: one per CPU)", metavar="N", type=int)
    show: bool = _option(False, "open a browser", flag=True)
    unused_session_lifetime: int = _option(
        15_000, "how long a session without a websocket (not yet or no longer connected) is kept (default: 15000)",
        metavar="MS", type=int,
    )  # fmt: skip
    check_unused_sessions: int = _option(
        17_000, "how often to look for such sessions (default: 17000)", metavar="MS", type=int
    )
    use_xheaders: bool = _option(
        False, "take the client's address from X-Real-Ip / X-Forwarded-For (only behind a proxy that sets them)",
        flag=True,
    )  # fmt: skip
    basic_auth: str | None = _option(
        None, 'a JSON file of {"user": "password", ...} (a value ending in .json, with a / or naming an existing '
        "file), or else one password for any user name", metavar="FILE|PASSWORD", group="login",
    )  # fmt: skip
    login_attempts: int = _option(
        10, "failed logins (--basic-auth) a client may make in --login-window before it must wait (default: 10)",
        metavar="N", group="login", type=int,
    )  # fmt: skip
    login_window: float = _option(
        60.0, "the window of --login-attempts (default: 60)", metavar="SECONDS", group="login", type=float
    )
    secure_cookies: bool = _option(
        False, "mark the login cookies Secure: for a server reached over HTTPS (behind a TLS proxy)",
        group="login", flag=True,
    )  # fmt: skip
    cookie_secret: str | None = _option(
        None, "key signing the login cookie (default: $PANEL_COOKIE_SECRET)", metavar="SECRET", group="login"
    )
    oauth_provider: str | None = _option(
        None, "generic (any OpenID Connect server), github, google, azure, okta, ...", metavar="NAME", group="login"
    )
    oauth_key: str | None = _option(None, "OAuth client id (default: $PANEL_OAUTH_KEY)", metavar="ID", group="login")
    oauth_secret: str | None = _option(
        None, "OAuth client secret (default: $PANEL_OAUTH_SECRET)", metavar="SECRET", group="login"
    )
    oauth_extra_params: dict | str | None = _option(
        None, 'provider settings, e.g. {"AUTHORIZE_URL": ..., "TOKEN_URL": ..., "USER_URL": ...} for generic',
        metavar="JSON", group="login",
    )  # fmt: skip
    oauth_redirect_uri: str | None = _option(
        None, "public URL of the login page (the callback)", metavar="URL", group="login"
    )

    def __post_init__(self) -> None:
        if self.annotations is not None:
            path = Path(self.annotations).expanduser().resolve()
            if path.is_dir():
                raise ParameterError(f"--annotations {self.annotations!r} is a folder: name a file in it")
            if not path.parent.is_dir():
                raise ParameterError(f"--annotations {self.annotations!r}: its folder does not exist")
            object.__setattr__(self, "annotations", str(path))  # (whatever the working directory is later)
        if self.audio_root is not None:
            root = Path(self.audio_root).expanduser().resolve()
            if not root.is_dir():
                raise ParameterError(f"--audio-root {self.audio_root!r} is not a folder")
            object.__setattr__(self, "audio_root", str(root))
        if not (isinstance(self.max_play_seconds, (int, float)) and 0 < self.max_play_seconds < float("inf")):
            raise ParameterError(f"--max-play-seconds {self.max_play_seconds} must be a positive number of seconds")
        if self.num_procs < 0:
            raise ParameterError(f"--num-procs {self.num_procs} must be 0 (one per CPU) or more")
        for flag, ms in {
            "--unused-session-lifetime": self.unused_session_lifetime,
            "--check-unused-sessions": self.check_unused_sessions,
        }.items():
            if ms <= 0:
                raise ParameterError(f"{flag} {ms} must be a positive number of milliseconds")
        if self.login_attempts < 1:
            raise ParameterError(f"--login-attempts {self.login_attempts} must be 1 or more")
        if not self.login_window > 0:
            raise ParameterError(f"--login-window {self.login_window} must be a positive number of seconds")
        if isinstance(self.oauth_extra_params, str):
            try:
                extra = json.loads(self.oauth_extra_params)
            except ValueError as err:
                raise ParameterError(f"--oauth-extra-params is not JSON: {err}") from None
            if not isinstance(extra, dict):
                raise ParameterError('--oauth-extra-params must be a JSON object, e.g. {"TOKEN_URL": "https://..."}')
            object.__setattr__(self, "oauth_extra_params", extra)
        self._check_login()

    def _check_login(self) -> None:
        import panel as pn  # (only here: the console script's parser needs no Panel)

        if self.basic_auth and self.oauth_provider:
            raise ParameterError("--basic-auth and --oauth-provider exclude each other: choose one way to log in")
        oauth = {
            "--oauth-key": self.oauth_key,
            "--oauth-secret": self.oauth_secret,
            "--oauth-extra-params": self.oauth_extra_params,
            "--oauth-redirect-uri": self.oauth_redirect_uri,
        }
        if self.oauth_provider is None:
            given = [flag for flag, value in oauth.items() if value]
            if given:
                raise ParameterError(f"{given[0]} needs --oauth-provider")
        else:
            from panel.auth import AUTH_PROVIDERS

            if self.oauth_provider not in AUTH_PROVIDERS:
                raise ParameterError(f"--oauth-provider {self.oauth_provider!r} is not one of {sorted(AUTH_PROVIDERS)}")
            needed = {
                "--oauth-key": self.oauth_key or pn.config.oauth_key,
                "--oauth-secret": self.oauth_secret or pn.config.oauth_secret,
            }
            for flag, value in needed.items():
                if not value and self.oauth_provider != "pam":  # PAM logs in against the host's own accounts
                    env = "PANEL_" + flag[2:].upper().replace("-", "_")
                    raise ParameterError(f"--oauth-provider {self.oauth_provider} needs {flag} (or {env})")
        login = "--basic-auth" if self.basic_auth else "--oauth-provider" if self.oauth_provider else None
        if login and not (self.cookie_secret or pn.config.cookie_secret):
            raise ParameterError(f"{login} needs --cookie-secret (or PANEL_COOKIE_SECRET) to sign the login cookie")
        if self.secure_cookies and not self.basic_auth:
            raise ParameterError("--secure-cookies marks the cookies of --basic-auth's login: it needs --basic-auth")
        if self.basic_auth:
            object.__setattr__(self, "basic_auth", _credentials(self.basic_auth))

    def login_options(self) -> dict:
        """The login keywords for :func:`panel.serve`, those given.

        ``--basic-auth`` becomes our own auth provider (:class:`dashboard.login.LoginProvider`),
        not Panel's: a credentials file that cannot be read lets nobody in, logins are limited
        per client, a user taken out of the file is logged out.
        """
        names = ("cookie_secret", "oauth_provider", "oauth_key", "oauth_secret")
        names += ("oauth_extra_params", "oauth_redirect_uri")
        options = {name: getattr(self, name) for name in names if getattr(self, name)}
        if self.basic_auth:
            from dashboard.login import LoginProvider

            file = os.path.isabs(self.basic_auth)  # a file is kept by its absolute path; a password has no separator
            options["auth_provider"] = LoginProvider(
                users_file=self.basic_auth if file else None,
                password=None if file else self.basic_auth,
                attempts=self.login_attempts,
                window=self.login_window,
                secure_cookies=self.secure_cookies,
            )
        return options

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add a flag for every option to ``parser`` (``--data-root``, ``--port``, ...)."""
        groups = {"server": parser, "login": parser.add_argument_group("login (Panel's auth providers)")}
        for option in fields(cls):
            meta = dict(option.metadata)
            group, repeat, is_flag = groups[meta.pop("group")], meta.pop("repeat"), meta.pop("flag", False)
            flag = "--" + option.name.replace("_", "-")
            if is_flag:
                group.add_argument(flag, action="store_true", help=meta["help"])
            elif repeat:
                group.add_argument(flag, action="append", default=[], **meta)
            else:
                group.add_argument(flag, default=option.default, **meta)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ServerOptions:
        """The options a parsed command line gives."""
        return cls(**{option.name: getattr(args, option.name) for option in fields(cls)})


def _credentials(basic_auth: str) -> str:
    """A password as it is, or a credentials file checked now and given by its absolute path.

    The value is a file if it ends in ``.json``, holds a path separator or names something
    that exists; such a value is never a password (Panel's own login took a path it could
    not read as the password of every user name).
    """
    separator = os.sep in basic_auth or bool(os.altsep and os.altsep in basic_auth)
    if not (basic_auth.lower().endswith(".json") or separator or os.path.exists(basic_auth)):
        return basic_auth
    try:
        read_users(basic_auth)
    except ValueError as err:
        hint = "" if os.path.exists(basic_auth) else " (a value ending in .json or with a / is a file, not a password)"
        raise ParameterError(f"--basic-auth credentials file {basic_auth!r}: {err}{hint}") from None
    return str(Path(basic_auth).resolve())  # read at each login, whatever the working directory is then


def read_users(path: str) -> dict[str, str]:
    """The users of a credentials file, ``{"user": "password", ...}``.

    Raises
    ------
    ValueError
        Why the file is no credentials file, in a few words: it cannot be read (missing,
        a directory, no permission), is not JSON (half written), or holds no users.
    """
    try:
        with open(path, encoding="utf-8") as file:
            users = json.load(file)
    except OSError as err:
        raise ValueError(err.strerror or str(err)) from None
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if not users or not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
        raise ValueError('it must hold {"user": "password", ...}')
    return users
