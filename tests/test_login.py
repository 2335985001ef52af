"""The login of ``spectral-atlas serve --basic-auth`` and the headers of served pages (issue 15, items 3 and 8).

Real ``spectral-atlas serve`` processes on free ports, spoken to over real HTTP:
a credentials file that is mistyped, a directory or not JSON stops the server at
start in one line; one that goes missing or is half written while it runs lets
nobody in (503, never a 500, never the path as a password); a user taken out of it
loses their session; failed logins are limited per client; cookies can be marked
``Secure``; every response carries the framing and sniffing headers.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
import urllib.parse

import pytest
import soundfile as sf
from conftest import SR, tone
from test_browser import _free_port, running
from test_hosted import _cookies, _messages, _redirected_to, _request, _session, run_async
from tornado.httpclient import HTTPClientError

from data_access import StftConfig, ingest, open_timeline

SECRET = "s" * 32
WINDOW = 2.0  # seconds of --login-window on the file server: the rate-limit test waits it out
ATTEMPTS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("login-store")
    sf.write(folder / "tone.wav", tone(1000.0, 5.0), SR, subtype="FLOAT")
    timeline = open_timeline([folder / "tone.wav"], start_time="2024-05-01T00:00:00")
    return str(ingest(timeline, folder / "tone.nc", StftConfig(n_fft=256), format="netcdf", progress=False))


USERS = {"ana": "ana's passphrase", "ben": "ben's passphrase"}


@pytest.fixture(scope="module")
def file_server(store, tmp_path_factory, cli):
    """A server on a credentials file, with Secure cookies, client addresses from X-Real-Ip and a short window."""
    folder = tmp_path_factory.mktemp("file-login")
    users = folder / "users.json"
    users.write_text(json.dumps(USERS))
    port = _free_port()
    cmd = [*cli, "serve", store, "--port", str(port), "--basic-auth", str(users), "--cookie-secret", SECRET]
    cmd += ["--secure-cookies", "--use-xheaders", "--login-attempts", str(ATTEMPTS), "--login-window", str(WINDOW)]
    with running(cmd, f"http://127.0.0.1:{port}/login", folder / "serve.log"):
        yield {"port": port, "users": users, "log": folder / "serve.log"}


@pytest.fixture
def users_file(file_server):
    """The file server's credentials file, written back as it was after the test."""
    yield file_server["users"]
    _restore(file_server["users"])


def _restore(path) -> None:
    if path.is_dir():
        path.rmdir()
    path.with_suffix(".moved").unlink(missing_ok=True)
    path.write_text(json.dumps(USERS))


@pytest.fixture(scope="module")
def password_server(store, tmp_path_factory, cli):
    """A server on one password (any user name), with the default options."""
    folder = tmp_path_factory.mktemp("password-login")
    port = _free_port()
    cmd = [*cli, "serve", store, "--port", str(port), "--basic-auth", "one password", "--cookie-secret", SECRET]
    with running(cmd, f"http://127.0.0.1:{port}/login", folder / "serve.log"):
        yield port


def _login(port: int, user: str, password: str, client: str | None = None):
    """POST the login form, from ``client`` (an X-Real-Ip) if given: (status, headers, text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **({"X-Real-Ip": client} if client else {})}
    connection.request("POST", "/login", urllib.parse.urlencode({"username": user, "password": password}), headers)
    reply = connection.getresponse()
    result = reply.status, reply.headers, reply.read().decode(errors="replace")
    connection.close()
    return result


def _logged_in(status: int, headers) -> bool:
    return status == 302 and "user=" in _cookies(headers)


def _page(port: int, cookie: str) -> int:
    """The status of the page for these cookies: 200 shown, 302 sent to the login."""
    status, headers, _ = _request(port, "GET", "/", cookie=cookie)
    assert status == 200 or _redirected_to("/", headers).startswith("/login"), status
    return status


# ------------------------------------------------------------------ at start


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("FOLDER/users.jsn", "'FOLDER/users.jsn': No such file or directory (a value ending in .json or with a /"),
        ("missing.json", "'missing.json': No such file or directory"),
        ("FOLDER", "'FOLDER': Is a directory"),
        ("FOLDER/half.json", "'FOLDER/half.json': not JSON: Unterminated string"),
        ("FOLDER/list.json", """'FOLDER/list.json': it must hold {"user": "password", ...}"""),
    ],
)
def test_a_credentials_file_that_is_not_one_stops_the_server_in_one_line(store, tmp_path, cli, value, message):
    (tmp_path / "half.json").write_text('{"ana": "pw')
    (tmp_path / "list.json").write_text('["ana"]')
    value, message = value.replace("FOLDER", str(tmp_path)), message.replace("FOLDER", str(tmp_path))
    cmd = [*cli, "serve", store, "--port", str(_free_port()), "--basic-auth", value, "--cookie-secret", SECRET]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"spectral-atlas: error: --basic-auth credentials file {message}"), result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--secure-cookies"], "--secure-cookies marks the cookies of --basic-auth's login: it needs --basic-auth"),
        (["--basic-auth", "pw", "--login-attempts", "0"], "--login-attempts 0 must be 1 or more"),
        (["--basic-auth", "pw", "--login-window", "0"], "--login-window 0.0 must be a positive number of seconds"),
    ],
)
def test_login_options_out_of_range_stop_the_server_in_one_line(store, cli, options, message):
    cmd = [*cli, "serve", store, "--port", str(_free_port()), "--cookie-secret", SECRET, *options]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr == f"spectral-atlas: error: {message}\n", result.stderr


# ------------------------------------------------------------------ while running


def _half_written(path):
    path.write_text('{"ana": "ana\'s pass')


def _a_directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    ("breaking", "reason"),
    [
        (lambda path: path.rename(path.with_suffix(".moved")), "No such file or directory"),
        (_half_written, "not JSON: Unterminated string"),
        (_a_directory, "Is a directory"),
        (lambda path: path.write_text("{}"), 'it must hold {"user": "password", ...}'),
    ],
    ids=["moved-away", "half-written", "a-directory", "no-users"],
)
def test_a_credentials_file_that_breaks_while_running_lets_nobody_in(file_server, users_file, breaking, reason):
    port = file_server["port"]
    status, headers, _ = _login(port, "ana", USERS["ana"])
    cookie = _cookies(headers)
    assert _logged_in(status, headers) and _page(port, cookie) == 200

    breaking(users_file)
    for user, password in [("ana", str(users_file)), ("anyone", str(users_file)), ("ana", USERS["ana"])]:
        status, headers, text = _login(port, user, password)
        assert status == 503 and "user=" not in _cookies(headers), (user, password, status)
        assert text == "Login is unavailable: the server cannot read its list of users; tell its operator.\n"
    assert _page(port, cookie) == 302  # a session already open: back to the login
    log = file_server["log"].read_text()
    assert f"credentials file {users_file} cannot be used ({reason}" in log and "Traceback" not in log

    _restore(users_file)
    assert _logged_in(*_login(port, "ana", USERS["ana"])[:2]) and _page(port, cookie) == 200
    assert f"credentials file {users_file} can be read again" in file_server["log"].read_text()


def test_a_user_taken_out_of_the_file_loses_their_session(file_server, users_file):
    port = file_server["port"]
    cookies = {user: _cookies(_login(port, user, password)[1]) for user, password in USERS.items()}
    token = _session(port, "/", cookie=cookies["ben"])
    users_file.write_text(json.dumps({"ana": USERS["ana"]}))

    assert _page(port, cookies["ben"]) == 302 and _page(port, cookies["ana"]) == 200
    with pytest.raises(HTTPClientError) as refused:  # the page opened before cannot connect
        headers = {"Cookie": cookies["ben"], "Origin": f"http://127.0.0.1:{port}"}
        run_async(_messages(port, "/ws", token, headers, pull=False))
    assert refused.value.code == 403
    status, headers, _ = _login(port, "ben", USERS["ben"])
    assert status == 302 and "user=" not in _cookies(headers)


# ------------------------------------------------------------------ rate limit, cookies, headers


def test_failed_logins_are_limited_per_client(file_server):
    port, client = file_server["port"], "10.0.0.1"
    for _ in range(ATTEMPTS):
        status, headers, _ = _login(port, "ana", "a guess", client)
        assert status == 302 and "user=" not in _cookies(headers)
    started = time.monotonic()
    status, headers, text = _login(port, "ana", USERS["ana"], client)  # even the right password, while limited
    assert status == 429 and "user=" not in _cookies(headers)
    assert 1 <= int(headers["Retry-After"]) <= WINDOW
    assert re.fullmatch(r"Too many failed logins from your address: try again in \d+ s\.\n", text)
    assert _logged_in(*_login(port, "ana", USERS["ana"], "10.0.0.2")[:2])  # another client is not limited
    assert "failed logins from 10.0.0.1 within 2 s" in file_server["log"].read_text()

    time.sleep(max(0.0, WINDOW + 0.2 - (time.monotonic() - started)))
    assert _logged_in(*_login(port, "ana", USERS["ana"], client)[:2])


def test_secure_cookies_are_marked_secure_and_others_not(file_server, password_server):
    for port, user, password, secure in [
        (file_server["port"], "ana", USERS["ana"], True),
        (password_server, "whoever", "one password", False),  # a plain password: any user name
    ]:
        _, headers, _ = _request(port, "GET", "/login")  # sets next_url
        cookies = headers.get_all("Set-Cookie")
        status, headers, _ = _login(port, user, password)
        assert _logged_in(status, headers)
        cookies += headers.get_all("Set-Cookie")
        cookies += _request(port, "GET", "/logout", cookie=_cookies(headers))[1].get_all("Set-Cookie")
        assert {c.split("=", 1)[0] for c in cookies} >= {"next_url", "user", "id_token", "access_token"}
        for cookie in cookies:
            flags = [flag.strip().lower() for flag in cookie.split(";")[1:]]
            assert "httponly" in flags and "samesite=lax" in flags, cookie
            assert ("secure" in flags) == secure, cookie


HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'; object-src 'none'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def test_every_response_carries_the_security_headers_and_the_page_s_resources_their_types(password_server):
    port = password_server
    cookie = _cookies(_login(port, "whoever", "one password")[1])
    status, headers, page = _request(port, "GET", "/", cookie=cookie)
    assert status == 200
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert scripts and styles and "static/js/bokeh.min.js" in " ".join(scripts)
    replies = {"/": headers}
    for path in ["/login", "/logout", "/no/such/page"]:
        replies[path] = _request(port, "GET", path, cookie=cookie)[1]
    # nosniff: a script or stylesheet served with another type would not run; each is served with its own.
    for paths, kind in [(scripts, r"(text|application)/javascript"), (styles, r"text/css")]:
        for path in paths:
            status, headers, _ = _request(port, "GET", "/" + path, cookie=cookie)
            assert status == 200 and re.match(kind, headers["Content-Type"]), (path, status, headers["Content-Type"])
            replies[path] = headers
    for path, headers in replies.items():
        for name, value in HEADERS.items():
            assert headers[name] == value, (path, name)
