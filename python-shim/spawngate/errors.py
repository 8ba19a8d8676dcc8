"""Errors raised by RemoteSpawner.

One class per failure, each with a stable ``name``. ``str(error)`` is the text
a person reads: JupyterHub shows it on the spawn page ("Spawn failed: ...").
``jupyterhub_message`` / ``jupyterhub_html_message`` are the attributes
JupyterHub's progress API prefers when present.
"""

import asyncio
import html

from tornado import web


class SpawngateError(Exception):
    """Base class: spawngate answered with an error, or could not be used."""

    name = "SpawngateError"

    def __init__(self, message, *, status=None):
        # Exception.__init__ explicitly: subclasses also inherit from tornado's
        # HTTPError / asyncio.TimeoutError, whose __init__ takes other arguments.
        Exception.__init__(self, message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message

    @property
    def jupyterhub_message(self):
        return self.message


class SpawngateConfigError(SpawngateError):
    """RemoteSpawner is not configured well enough to contact spawngate."""

    name = "SpawngateConfigError"


class ServiceUnreachable(SpawngateError):
    """spawngate could not be reached (connection refused, DNS, TLS, timeout).

    ``may_have_arrived`` is True when the request was sent but no answer came in
    time (a timeout during the request, a connection closed mid-answer):
    spawngate may then have acted on it. It is False when no connection was made.
    """

    name = "ServiceUnreachable"

    def __init__(self, url, reason, may_have_arrived=False):
        super().__init__(
            f"spawngate at {url} is unreachable: {reason}. "
            "Check c.RemoteSpawner.service_url (env SPAWNGATE_URL) and that spawngate is running."
        )
        self.url = url
        self.reason = reason
        self.may_have_arrived = may_have_arrived


class SpawnRefused(SpawngateError, web.HTTPError):
    """spawngate refused the start request (HTTP 400: unknown profile, invalid user_options).

    Also a ``tornado.web.HTTPError(400)``, so JupyterHub's REST API answers the
    client with 400 and spawngate's message instead of a 500.
    """

    name = "SpawnRefused"

    def __init__(self, message, *, status=400):
        web.HTTPError.__init__(self, status, "%s", message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message


class SpawnFailed(SpawngateError):
    """The server reached state ``failed`` (or stopped) before becoming ready.

    ``message`` includes spawngate's reason and the server's last output lines.
    """

    name = "SpawnFailed"

    def __init__(self, reason, last_output=(), *, exit_code=None):
        self.reason = reason
        self.last_output = [str(line) for line in (last_output or [])]
        self.exit_code = exit_code
        message = reason
        if self.last_output:
            message += "\nLast output of the server:\n" + "\n".join(self.last_output)
        super().__init__(message)

    @property
    def jupyterhub_html_message(self):
        text = html.escape(self.reason)
        if self.last_output:
            lines = html.escape("\n".join(self.last_output))
            text += f"<br>Last output of the server:<pre>{lines}</pre>"
        return text


class SpawnTimeout(SpawngateError, asyncio.TimeoutError):
    """The server was still pending when ``start_timeout`` ran out.

    Also an ``asyncio.TimeoutError``, which JupyterHub reports as a start timeout.
    """

    name = "SpawnTimeout"
