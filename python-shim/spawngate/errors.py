"""Errors raised by RemoteSpawner.

One class per failure, each with a stable ``name``. ``str(error)`` is the text
a person reads. Every one is a ``tornado.web.HTTPError`` carrying that text, so
each page of the hub that can show a spawn error shows spawngate's message
rather than "500 : Internal Server Error":

- the spawn form (JupyterHub 3.0 shows ``str(error)`` of a failed form post;
  4.1+ ``jupyterhub_message`` / ``jupyterhub_html_message``);
- the error page of a spawn without a form (``log_message % args`` of an
  ``HTTPError``; other exceptions become "Unhandled error starting server");
- the pending page and the progress stream ("Spawn failed: " +
  ``jupyterhub_message``), and the "Spawn failed" page after it
  (``jupyterhub_html_message`` or ``jupyterhub_message``);
- the REST API (``status_code`` and the message).

``status_code`` is what the hub answers with; ``status`` is what spawngate
answered (None when it did not answer).
"""

import asyncio
import html

from tornado import web


class SpawngateError(web.HTTPError):
    """Base class: spawngate answered with an error, or could not be used.

    The hub answers with ``status_code`` 500 (spawngate or its configuration
    is at fault, not the user's request) unless a subclass says otherwise.
    """

    name = "SpawngateError"
    status_code_default = 500

    def __init__(self, message, *, status=None, status_code=None):
        # "%s" keeps a "%" in the message from being read as a format directive
        web.HTTPError.__init__(self, status_code or self.status_code_default, "%s", message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message

    @property
    def jupyterhub_message(self):
        return self.message

    # JupyterHub's User.spawn sets ``reason = "error"`` (or ``"timeout"``) on
    # whatever start() raised, and its error page then shows a fixed text
    # ("Failed to start your server on the last attempt…") in place of the
    # exception's message; tornado would also put ``reason`` in the HTTP status
    # line. The hub's label is kept as ``hub_reason``; ``reason`` stays unset, so
    # the page shows spawngate's message under the standard status phrase.
    @property
    def reason(self):
        return None

    @reason.setter
    def reason(self, value):
        self.hub_reason = value


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
    status_code_default = 503

    def __init__(self, url, reason, may_have_arrived=False):
        super().__init__(
            f"spawngate at {url} is unreachable: {reason}. "
            "Check c.RemoteSpawner.service_url (env SPAWNGATE_URL) and that spawngate is running."
        )
        self.url = url
        # why the connection failed (``reason`` is taken: see SpawngateError)
        self.cause = reason
        self.may_have_arrived = may_have_arrived


class SpawnRefused(SpawngateError):
    """spawngate refused the start request for a reason the user can act on.

    Unknown profile or invalid ``user_options`` (400), a deactivated user (403),
    a per-user limit (429), a server still stopping (409). The hub answers with
    the same status and spawngate's message.
    """

    name = "SpawnRefused"

    def __init__(self, message, *, status=400, retry_after=None):
        super().__init__(message, status=status, status_code=status)
        # the hub (3.0 and later) sets an HTTPError's ``headers`` on its answer
        self.headers = {"Retry-After": retry_after} if retry_after else {}


class SpawnFailed(SpawngateError):
    """The server reached state ``failed`` (or stopped) before becoming ready.

    ``message`` includes spawngate's reason and the server's last output lines.
    """

    name = "SpawnFailed"

    def __init__(self, reason, last_output=(), *, exit_code=None):
        # spawngate's reason alone (``reason`` is taken: see SpawngateError)
        self.failure = reason
        self.last_output = [str(line) for line in (last_output or [])]
        self.exit_code = exit_code
        message = reason
        if self.last_output:
            message += "\nLast output of the server:\n" + "\n".join(self.last_output)
        super().__init__(message)

    @property
    def jupyterhub_html_message(self):
        text = html.escape(self.failure)
        if self.last_output:
            lines = html.escape("\n".join(self.last_output))
            text += f"<br>Last output of the server:<pre>{lines}</pre>"
        return text


class SpawnTimeout(SpawngateError, asyncio.TimeoutError):
    """The server was still pending when ``start_timeout`` ran out.

    Also an ``asyncio.TimeoutError``, which JupyterHub reports as a start timeout.
    """

    name = "SpawnTimeout"
