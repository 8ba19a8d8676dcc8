"""HTTP access to the spawngate hub API (docs/hub-api.md), over tornado only.

Owns: URL building (path escaping), the ``Authorization`` header, JSON
encoding/decoding, turning connection failures into ``ServiceUnreachable``,
and the HTTP client instance. It never logs headers or bodies, so the hub
token and the server environment (which holds JupyterHub's API token) stay
out of logs.

Long-polls and progress streams hold a connection for up to a minute, so they
must not share JupyterHub's default ``AsyncHTTPClient`` (10 connections,
also used by the hub for its proxy and server checks). We keep one dedicated
client per event loop with room for many concurrent spawns.
"""

import json
import re
import weakref
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from .errors import ServiceUnreachable, SpawngateConfigError

# Concurrent connections to spawngate per hub process. Each spawn in progress
# holds up to two (long-poll + progress stream); JupyterHub's default
# concurrent_spawn_limit is 100.
MAX_CONNECTIONS = 500

_clients = weakref.WeakKeyDictionary()


def _http_client():
    """The dedicated client for the current IOLoop (created on first use).

    ``SimpleAsyncHTTPClient`` is instantiated directly, not through
    ``AsyncHTTPClient()``, so that JupyterHub's ``AsyncHTTPClient.configure(...)``
    (curl, internal-SSL defaults meant for the hub's own servers) does not apply
    to requests to spawngate.
    """
    loop = IOLoop.current()
    client = _clients.get(loop)
    if client is None:
        client = SimpleAsyncHTTPClient(force_instance=True, max_clients=MAX_CONNECTIONS)
        _clients[loop] = client
    return client


def server_path(user, server_name):
    """API path of a user's server: ``/api/users/{user}/server`` or ``…/servers/{name}``."""
    path = "/api/users/" + quote(user, safe="")
    if server_name:
        return path + "/servers/" + quote(server_name, safe="")
    return path + "/server"


def profiles_path(user):
    return "/api/users/" + quote(user, safe="") + "/profiles"


def redact_url(url):
    """``url`` without any user:password part, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class Response:
    """A spawngate answer: HTTP ``status``, the decoded JSON body (or None), and ``retry_after``."""

    def __init__(self, status, body, headers=None):
        self.status = status
        # seconds from a Retry-After header (429); only a plain number is passed on to the hub
        value = (headers or {}).get("Retry-After") or ""
        self.retry_after = value if re.fullmatch(r"[0-9]{1,6}", value) else None
        self.text = body.decode("utf-8", "replace") if body else ""
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    @property
    def ok(self):
        return 200 <= self.status < 300

    @property
    def message(self):
        """The error message a person can act on (``message`` of the JSON error body)."""
        if isinstance(self.json, dict) and self.json.get("message"):
            return str(self.json["message"])
        if self.text:
            return f"HTTP {self.status}: {self.text[:500]}"
        return f"HTTP {self.status}"


def _may_have_arrived(error):
    """Whether a failed request may still have reached spawngate (see ServiceUnreachable).

    tornado's simple client names the timeouts that happen before anything is
    sent ("Timeout while connecting", "Timeout in request queue"); connection
    errors are OSErrors. Anything else happened with the request on the wire.
    """
    if error is None or isinstance(error, OSError):
        return False
    message = getattr(error, "message", None) or str(error)
    return not message.startswith(("Timeout while connecting", "Timeout in request queue"))


class ServiceClient:
    """Speaks to one spawngate base URL with one token.

    ``request`` returns a ``Response`` for every HTTP status (the caller decides
    what a status means) and raises ``ServiceUnreachable`` when there is no HTTP
    answer at all. It does not retry: callers own retries and polling.
    """

    def __init__(self, base_url, token, request_timeout):
        if not base_url:
            raise SpawngateConfigError(
                "spawngate URL is not configured: set c.RemoteSpawner.service_url "
                "or the SPAWNGATE_URL environment variable"
            )
        if not token:
            raise SpawngateConfigError(
                "spawngate token is not configured: set c.RemoteSpawner.service_token "
                "or the SPAWNGATE_HUB_TOKEN environment variable"
            )
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        self._token = token
        self.request_timeout = request_timeout

    def url(self, path, query=None):
        url = self.base_url + path
        if query:
            url += "?" + urlencode(query)
        return url

    async def request(
        self,
        method,
        path,
        *,
        query=None,
        body=None,
        timeout=None,
        streaming_callback=None,
        accept="application/json",
    ):
        """Send one request; return ``Response``.

        ``timeout`` (seconds) bounds the whole request; it defaults to
        ``request_timeout``. Raises ``ServiceUnreachable`` on connection
        errors and timeouts.
        """
        headers = {"Authorization": f"token {self._token}", "Accept": accept}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            payload = ""
        req = HTTPRequest(
            self.url(path, query),
            method=method,
            headers=headers,
            body=payload,
            connect_timeout=self.request_timeout,
            request_timeout=timeout if timeout is not None else self.request_timeout,
            streaming_callback=streaming_callback,
            follow_redirects=False,
        )
        try:
            resp = await _http_client().fetch(req, raise_error=False)
        except HTTPClientError as e:
            # tornado reports timeouts and closed connections as code 599
            raise ServiceUnreachable(self.display_url, e.message or str(e), _may_have_arrived(e)) from e
        except OSError as e:
            raise ServiceUnreachable(self.display_url, e.strerror or str(e)) from e
        if resp.code == 599:
            reason = str(resp.error) if resp.error else "no response"
            raise ServiceUnreachable(self.display_url, reason, _may_have_arrived(resp.error))
        return Response(resp.code, resp.body if streaming_callback is None else b"", resp.headers)
