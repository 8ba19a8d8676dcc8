"""``RemoteSpawner``: a JupyterHub spawner whose servers are run by spawngate.

The hub holds only a spawngate token; spawngate starts the single-user server
on its backend (local processes, Docker, Kubernetes) and reports its URL and
state. Every method maps to one resource of the hub API (docs/hub-api.md):

=============  ==============================================================
start()        ``POST …/server``, then long-poll ``GET …/server?wait=ready``
poll()         ``GET …/server``
stop()         ``DELETE …/server?wait=true``
progress()     ``GET …/server/progress`` (server-sent events)
options_form   ``GET /api/users/{user}/profiles``
=============  ==============================================================

``…/server`` is ``/api/users/{user}/server`` for the default server and
``/api/users/{user}/servers/{name}`` for a named one (names URL-escaped).
Works with JupyterHub 3.0 and later.
"""

import asyncio
import fnmatch
import os
from urllib.parse import urlsplit

from jupyterhub.spawner import Spawner
from traitlets import Enum, Float, Integer, List, Unicode, default

from . import _client, _waiting
from ._form import profile_from_form, render_profiles_form, render_unavailable
from ._user_options import apply_user_options, sendable_user_options
from .errors import ServiceUnreachable, SpawnFailed, SpawngateError, SpawnRefused, SpawnTimeout

STATE_KEY = "spawngate"
# answers to a start request that refuse it for a reason the user can act on
# (docs/hub-api.md): bad options, deactivated user, still stopping, a limit
REFUSAL_STATUSES = (400, 403, 409, 422, 429)
_ALIVE_STATES = ("pending", "running", "stopping")

# tasks started from a cancelled start(); referenced here so they are not collected
_background_tasks = set()


class RemoteSpawner(Spawner):
    """Spawner that asks spawngate to run the single-user server.

    Configure with ``c.JupyterHub.spawner_class = "spawngate"`` plus
    ``SPAWNGATE_URL`` and ``SPAWNGATE_HUB_TOKEN`` (or the traits below).
    """

    service_url = Unicode(
        help="""
        Base URL of the spawngate API, e.g. ``http://spawngate:8000``.

        Default: the ``SPAWNGATE_URL`` environment variable of the hub process.
        """,
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("SPAWNGATE_URL", "")

    service_token = Unicode(
        help="""
        Token sent to spawngate as ``Authorization: token <service_token>``
        (spawngate's hub token, ``SPAWNGATE_HUB_TOKEN`` on its side). Never logged.

        Default: the ``SPAWNGATE_HUB_TOKEN`` environment variable of the hub process.
        """,
    ).tag(config=True)

    @default("service_token")
    def _default_service_token(self):
        return os.environ.get("SPAWNGATE_HUB_TOKEN", "")

    request_timeout = Float(
        30.0,
        help="""
        Seconds to wait for spawngate to connect and answer an ordinary request
        (default 30). Long-polls and progress streams get this much on top of
        the time they are asked to wait.
        """,
    ).tag(config=True)

    stop_timeout = Integer(
        120,
        help="""
        Seconds ``stop()`` waits for spawngate to report the server stopped
        (default 120). After that ``stop()`` logs a warning and returns;
        spawngate keeps stopping the server.
        """,
    ).tag(config=True)

    poll_outage_policy = Enum(
        ["assume-running", "assume-stopped"],
        default_value="assume-running",
        help="""
        What ``poll()`` reports when spawngate cannot be asked: connection
        refused, timeout, HTTP 5xx, or any answer other than 200/404 (e.g. 401
        after a token change). Default ``"assume-running"``.

        - ``"assume-running"``: ``poll()`` returns None (still running) and
          logs a warning. A spawngate restart or brief outage never makes the
          hub declare running servers dead and drop their routes; the servers
          themselves keep running, and the next successful poll reports the
          truth.
        - ``"assume-stopped"``: ``poll()`` returns 1 and ``stop()`` treats an
          unreachable spawngate as already stopped. Only for deployments where
          servers cannot outlive spawngate (e.g. the ``local`` backend on the
          same machine).
        """,
    ).tag(config=True)

    hub_local_env = List(
        Unicode(),
        ["PATH", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_*"],
        help="""
        Environment variables *not* sent to spawngate, as names or shell-style
        patterns (default: PATH, PYTHONPATH, PYTHONHOME, LD_LIBRARY_PATH,
        VIRTUAL_ENV, CONDA_*).

        ``Spawner.get_env()`` copies ``env_keep`` variables from the hub
        process; these describe the hub's own machine and Python and would
        break a server started elsewhere (an image or pod has its own PATH).
        A variable the admin sets explicitly in ``c.Spawner.environment`` is
        always sent, even when it matches. ``JUPYTERHUB_*`` variables are
        always sent unless listed here.
        """,
    ).tag(config=True)

    # what start()/load_state() learned about the server; see get_state()
    _state_user = None
    _state_name = None
    _generation = None
    _url = None
    _start_in_flight = False
    # True while start() runs and spawngate has answered its start request (see progress())
    _start_answered = False

    # ---------------------------------------------------------------- helpers

    def _service(self):
        return _client.ServiceClient(self.service_url, self.service_token, self.request_timeout)

    def _identity(self):
        """(user, server name) as spawngate knows them.

        Names stored by load_state()/start() win, so a server started before a
        hub restart is found even if the hub's names changed since.
        """
        user = self._state_user if self._state_user is not None else self.user.name
        name = self._state_name if self._state_name is not None else self.name
        return user, name or ""

    def _path(self, suffix=""):
        return _client.server_path(*self._identity()) + suffix

    def _remember(self, model):
        if not isinstance(model, dict):
            return
        if model.get("generation") is not None:
            self._generation = model["generation"]
        if model.get("url"):
            self._url = model["url"]

    def _start_env(self):
        """``get_env()`` minus the hub-local variables (see ``hub_local_env``)."""
        env = self.get_env()
        explicit = set(self.environment)
        patterns = list(self.hub_local_env)
        result = {}
        for key, value in env.items():
            if value is None:
                continue
            if key not in explicit and any(fnmatch.fnmatchcase(key, p) for p in patterns):
                continue
            result[key] = str(value)
        return result

    # ------------------------------------------------------------------ start

    async def start(self):
        """Ask spawngate to start the server; return its URL once it is running.

        Sends ``POST …/server`` with ``{env, user_options, args, start_timeout}``
        (``env`` is ``get_env()`` without ``hub_local_env``), then long-polls
        ``GET …/server?wait=ready&timeout=<s>`` until the state leaves
        ``pending``.

        Returns:
          str: the ``url`` of spawngate's server model (e.g.
          ``http://10.0.3.7:8888``), which the hub's proxy routes to.

        Raises (every error is a ``tornado.web.HTTPError`` whose message the
        hub's pages show, see ``spawngate.errors``):
          SpawnRefused: spawngate refused the start: 400 unknown profile or
            invalid ``user_options``, 403 deactivated user, 409 still stopping,
            429 a per-user limit; the message is spawngate's and the hub
            answers with the same status.
          SpawngateError: any other error answer (e.g. 401 for a wrong
            ``service_token``), with spawngate's message (hub status 500).
          SpawnFailed: the server reached ``failed`` (or stopped) instead of
            ``running``; the message has spawngate's reason and the server's
            last output lines.
          ServiceUnreachable: spawngate could not be reached for the start
            request, or stayed unreachable while waiting (names the URL).
          SpawnTimeout: still ``pending`` after ``start_timeout`` seconds, or
            the start request got no answer by then (it is repeated while its
            answer may have been lost; spawngate adopts the server it started).

        Idempotent on spawngate's side: a repeated start of a pending or
        running server adopts it instead of creating a second one.
        While start() runs, poll() returns None. If the hub cancels start()
        (JupyterHub >= 5.1 does at ``start_timeout``), a ``DELETE`` is sent in
        the background so spawngate does not keep starting a server nobody
        waits for, and the cancellation is re-raised.
        """
        service = self._service()
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        self._state_user, self._state_name = self.user.name, self.name or ""
        self._generation = self._url = None
        self._start_in_flight = True
        self._start_answered = False
        try:
            body = {
                "env": self._start_env(),
                "user_options": sendable_user_options(self.user_options),
                "args": [str(a) for a in self.get_args()],
                "start_timeout": self.start_timeout,
            }
            self.log.info("Asking spawngate to start %s", self._log_name)
            resp = await self._post_start(service, body, deadline)
            self._start_answered = True
            if resp.status in REFUSAL_STATUSES:
                # refused before anything was created: the hub's clean-up stop() has nothing to do
                self._nothing_started = resp.status != 409
                raise SpawnRefused(resp.message, status=resp.status, retry_after=resp.retry_after)
            if not resp.ok or not isinstance(resp.json, dict):
                raise SpawngateError(
                    f"spawngate could not start the server: {resp.message}", status=resp.status
                )
            model = resp.json
            self._remember(model)
            model = await _waiting.wait_until_started(self, service, model, deadline)
            url = model.get("url")
            if not url:
                raise SpawnFailed("spawngate reports the server running but gave no url")
            self._url = url
            self.log.info("spawngate started %s at %s", self._log_name, url)
            return url
        except asyncio.CancelledError:
            self.log.warning(
                "Start of %s was cancelled; asking spawngate to stop it", self._log_name
            )
            task = asyncio.ensure_future(self._stop_after_cancel(service, self._path()))
            _background_tasks.add(task)
            task.add_done_callback(_background_tasks.discard)
            raise
        finally:
            self._start_in_flight = False
            self._start_answered = False

    async def _post_start(self, service, body, deadline):
        """``POST …/server``, asked again while its answer may have been lost.

        A start request that timed out after it was sent may have reached a busy
        spawngate, which then starts the server; the start is idempotent there
        (a pending or running server is adopted), so it is repeated until the
        start deadline. Remembers whether any attempt may have arrived, so that
        the hub's clean-up stop() after a failure reaches spawngate whenever
        something may exist there, and returns at once when nothing can.
        """
        loop = asyncio.get_running_loop()
        may_have_arrived = False
        while True:
            remaining = deadline - loop.time()
            try:
                resp = await service.request(
                    "POST", self._path(), body=body, timeout=max(1.0, min(self.request_timeout, remaining))
                )
            except ServiceUnreachable as e:
                may_have_arrived = may_have_arrived or e.may_have_arrived
                self._nothing_started = not may_have_arrived
                if not e.may_have_arrived:
                    raise
                if deadline - loop.time() < 1:
                    raise SpawnTimeout(
                        f"spawngate did not answer the start request within {self.start_timeout}"
                        f" seconds ({e.cause}); it may be overloaded"
                    ) from e
                self.log.warning(
                    "spawngate did not answer the start of %s in time (%s); asking again",
                    self._log_name,
                    e.cause,
                )
                continue
            self._nothing_started = False
            return resp

    async def _stop_after_cancel(self, service, path):
        try:
            resp = await service.request("DELETE", path)
            if resp.status >= 400 and resp.status != 404:
                self.log.warning(
                    "spawngate did not accept stopping %s: %s", self._log_name, resp.message
                )
        except Exception as e:  # background clean-up: report, never raise
            self.log.warning("Could not ask spawngate to stop %s: %s", self._log_name, e)

    # ------------------------------------------------------------------- poll

    async def poll(self):
        """Check whether the server is running.

        Returns:
          None while spawngate reports ``pending``, ``running`` or ``stopping``,
          and while start() is in flight (no request is made then);
          an int exit status once it is ``stopped`` (``exit_code``, else 0) or
          ``failed`` (``exit_code``, else 1); 0 when spawngate has no record
          of the server (404).

        spawngate finds servers by (user, server name), so poll() works after a
        hub restart with or without loaded state; it also refreshes the URL
        returned by get_url().

        Outage policy: when spawngate cannot be asked (connection refused,
        timeout, 5xx, or an unexpected status such as 401), poll() never
        reports a running server dead. With the default
        ``poll_outage_policy = "assume-running"`` it logs a warning and
        returns None; the next successful poll reports the truth. It never
        raises. Safe to call at any time; its only side effect is refreshing
        the cached URL and generation.
        """
        if self._start_in_flight:
            return None
        try:
            resp = await self._service().request("GET", self._path())
        except SpawngateError as e:
            return self._outage(str(e))
        if resp.status == 404:
            return 0
        if resp.status != 200 or not isinstance(resp.json, dict):
            return self._outage(f"spawngate answered HTTP {resp.status}: {resp.message}")
        model = resp.json
        self._remember(model)
        state = model.get("state")
        if state in _ALIVE_STATES:
            return None
        if state in ("stopped", "failed"):
            try:
                return int(model["exit_code"])
            except (KeyError, TypeError, ValueError):
                return 0 if state == "stopped" else 1
        return self._outage(f"spawngate reported unknown server state {state!r}")

    def _outage(self, reason):
        if self.poll_outage_policy == "assume-stopped":
            self.log.warning(
                "Cannot poll %s (%s); reporting it stopped (poll_outage_policy=assume-stopped)",
                self._log_name,
                reason,
            )
            return 1
        self.log.warning(
            "Cannot poll %s (%s); assuming it is still running", self._log_name, reason
        )
        return None

    # ------------------------------------------------------------------- stop

    async def stop(self, now=False):
        """Stop the server; return once spawngate reports it stopped.

        Sends ``DELETE …/server?wait=true&timeout=<s>`` (repeated while the
        answer is still ``stopping``, for up to ``stop_timeout`` seconds, after
        which a warning is logged and stop() returns). ``now`` is accepted for
        the Spawner interface; spawngate decides how gracefully to stop.

        Returns None. Idempotent: stopping a stopped, failed or unknown (404)
        server succeeds; after a start() whose request never reached spawngate,
        or that spawngate refused (400/403/422/429), it returns at once without
        a request (nothing can exist), so the hub's clean-up after a refusal is
        quick and its pages report the failure without a "pending stop" pause. Raises ``ServiceUnreachable`` when spawngate cannot be
        reached (unless ``poll_outage_policy = "assume-stopped"``) and
        ``SpawngateError`` when it refuses (e.g. 401/403).
        """
        if getattr(self, "_nothing_started", False):
            self.log.info("Not stopping %s: its start never reached spawngate or was refused", self._log_name)
            self._nothing_started = False
            return
        self.log.info("Asking spawngate to stop %s", self._log_name)
        service = self._service()
        deadline = asyncio.get_running_loop().time() + self.stop_timeout
        await _waiting.stop_until_stopped(self, service, deadline)

    # --------------------------------------------------------------- progress

    async def progress(self):
        """Yield ``{"progress": int, "message": str}`` events from spawngate.

        Reads the server-sent event stream ``GET …/server/progress`` of the
        current generation and ends at its ``ready`` or ``failed`` event,
        when the stream closes, or on any error (progress is informational:
        start() reports failures).

        The hub owns the first and the last event, so the events in between
        are relayed and these are not: spawngate's opening event (progress 0,
        "Server requested"; the hub yields that itself before calling
        progress()), and its ``ready``/``failed`` event (the hub sends its own,
        with the proxied URL or with start()'s exception, whose message is
        spawngate's reason).
        """
        try:
            service = self._service()
        except SpawngateError as e:
            self.log.warning("No progress for %s: %s", self._log_name, e)
            return
        # The hub asks for progress as soon as the spawn is pending, often before start() has sent its
        # request: spawngate would then know no server (404) or only the previous start's end, and this
        # start's events would be lost. Wait until spawngate has the start (or the spawn is over).
        while self._spawn_pending and not self._start_answered:
            await asyncio.sleep(0.05)
        events = _waiting.progress_events(self, service)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    # ---------------------------------------------------------- options form

    @default("options_form")
    def _default_options_form(self):
        # a callable: JupyterHub's get_options_form() calls it with the spawner
        # (and awaits the result), so the form is built per user at request time
        return self._profiles_form

    async def _profiles_form(self, spawner=None):
        """HTML radio list of the profiles spawngate offers this user; ``""`` if ≤ 1.

        Never raises: when the profiles cannot be fetched (spawngate down, an
        error answer, a configuration error) the form is a notice with the
        reason, and posting it is refused with a message (see ``_form``), so
        the user reads why instead of a bare 500 or silently getting the
        default profile. The reason is also logged.
        """
        spawner = spawner or self
        user = spawner.user.name
        try:
            resp = await spawner._service().request("GET", _client.profiles_path(user))
            if resp.status != 200 or not isinstance(resp.json, dict):
                raise SpawngateError(
                    f"spawngate could not list server profiles for {user}: {resp.message}",
                    status=resp.status,
                )
        except SpawngateError as e:
            spawner.log.warning("No options form for %s: %s", spawner._log_name, e)
            return render_unavailable(str(e))
        profiles = resp.json.get("profiles") or []
        return render_profiles_form(profiles)

    @default("options_from_form")
    def _default_options_from_form(self):
        return profile_from_form

    # JupyterHub >= 5.3 calls ``apply_user_options(spawner, user_options)``
    # before start(); older hubs have no such trait and never call it.
    if "apply_user_options" in Spawner.class_trait_names():

        @default("apply_user_options")
        def _default_apply_user_options(self):
            return apply_user_options

    # -------------------------------------------------------------- the rest

    async def get_url(self):
        """The server's URL as spawngate last reported it (refreshed by poll()).

        Keeps the hub's path (``Server.base_url``); falls back to the hub's
        own record when spawngate has not reported a URL.
        """
        if not self._url:
            return await super().get_url()
        parts = urlsplit(self._url)
        base = self.server.base_url if self.server else parts.path
        return f"{parts.scheme}://{parts.netloc}{base}"

    def get_state(self):
        """Return the JSON-able state the hub stores: ``{"spawngate": {user, name, generation, url}}``.

        Added to the base class state. Present once start() or load_state()
        has identified a server; enough for a restarted hub to poll and stop it.
        """
        state = super().get_state()
        if self._state_user is not None:
            state[STATE_KEY] = {
                "user": self._state_user,
                "name": self._state_name or "",
                "generation": self._generation,
                "url": self._url,
            }
        return state

    def load_state(self, state):
        """Restore what get_state() saved (called by the hub after a restart). Idempotent."""
        super().load_state(state)
        saved = (state or {}).get(STATE_KEY) or {}
        if not isinstance(saved, dict) or saved.get("user") is None:
            return
        self._state_user = str(saved["user"])
        self._state_name = str(saved.get("name") or "")
        self._generation = saved.get("generation")
        self._url = saved.get("url") or None

    def clear_state(self):
        """Forget the server (called by the hub after stop()). Idempotent."""
        super().clear_state()
        self._state_user = self._state_name = None
        self._generation = self._url = None
