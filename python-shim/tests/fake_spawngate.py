"""A small in-process implementation of the spawngate hub API (docs/hub-api.md).

It records every request (method, path, query, headers, JSON body) and lets a
test script what the server does: how long it stays pending, whether it ends
``running`` or ``failed``, canned error answers, outages, and how the progress
stream is chunked.
"""

import asyncio
import json
import socket
from urllib.parse import unquote

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError

TOKEN = "hub-secret-token-1234"


def unused_port():
    """A TCP port nothing listens on (bound and released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class Recorded:
    def __init__(self, handler):
        req = handler.request
        self.method = req.method
        self.path = req.path
        self.query = {k: handler.get_query_argument(k) for k in req.query_arguments}
        self.headers = dict(req.headers)
        self.body = json.loads(req.body) if req.body else None

    def __repr__(self):
        return f"<{self.method} {self.path} {self.query}>"


class Server:
    """spawngate's record of one (user, name) server."""

    def __init__(self, user, name, generation):
        self.user, self.name = user, name
        self.model = {
            "user": user,
            "name": name,
            "state": "pending",
            "generation": generation,
            "url": None,
            "exit_code": None,
            "message": None,
            "last_output": [],
            "profile": None,
            "started_at": None,
            "stopped_at": None,
        }
        self.changed = asyncio.Event()

    def set(self, **fields):
        self.model.update(fields)
        self.changed.set()
        self.changed = asyncio.Event()


class FakeSpawngate:
    def __init__(self):
        self.requests = []
        self.servers = {}
        self.profiles = {}  # user -> list of profiles
        self.plan = {"pending_for": 0.05, "result": "running"}
        self.url = "http://10.1.2.3:8888"
        self.fail_with = {"message": "pod was OOMKilled", "last_output": ["line one", "<b>line two</b>"], "exit_code": None}
        self.canned = []  # [(method, status, body[, headers])] answered once each, before normal handling
        self.post_answer_delays = []  # seconds each next POST acts at once but answers late (a busy spawngate)
        self.outage = False  # answer every request 503
        self.progress_chunks = None  # list of bytes the progress stream sends
        self.progress_chunk_delay = 0.01
        self.generation = 0
        self.stop_takes = 0.02
        self.active_streams = 0
        self.port = None

    # -- lifecycle (driven by conftest's async test runner)
    async def _astart(self):
        app = web.Application(
            [
                (r"/api/users/([^/]+)/profiles", ProfilesHandler, {"fake": self}),
                (r"/api/users/([^/]+)/server()(/progress)?", ServerHandler, {"fake": self}),
                (r"/api/users/([^/]+)/servers/([^/]+)(/progress)?", ServerHandler, {"fake": self}),
            ]
        )
        self.http = HTTPServer(app)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.http.add_sockets([sock])

    async def _astop(self):
        # let progress streams finish, so no connection is cut by the loop closing
        for _ in range(100):
            if not self.active_streams:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.02)
        self.http.stop()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    # -- helpers for tests
    def of(self, method, suffix=""):
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def add_server(self, user, name="", **fields):
        self.generation += 1
        server = Server(user, name, self.generation)
        server.model.update(fields)
        self.servers[(user, name)] = server
        return server

    async def run_plan(self, server):
        await asyncio.sleep(self.plan["pending_for"])
        if server.model["state"] != "pending":
            return
        if self.plan["result"] == "running":
            server.set(state="running", url=self.url)
        elif self.plan["result"] == "failed":
            server.set(state="failed", **self.fail_with)


class Base(web.RequestHandler):
    def initialize(self, fake):
        self.fake = fake

    def prepare(self):
        self.fake.requests.append(Recorded(self))
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            return self.error(401, "invalid token")
        if self.fake.outage:
            return self.error(503, "spawngate is restarting")
        for i, (method, status, body, *headers) in enumerate(self.fake.canned):
            if method == self.request.method:
                del self.fake.canned[i]
                self.set_status(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.set_header(name, value)
                return self.finish(body)

    def error(self, status, message):
        self.set_status(status)
        self.finish({"reason": self._reason, "message": message})

    def check_xsrf_cookie(self):
        pass


class ProfilesHandler(Base):
    def get(self, user):
        self.write({"profiles": self.fake.profiles.get(unquote(user), [])})


class ServerHandler(Base):
    def key(self, user, name):
        return unquote(user), unquote(name or "")

    async def get(self, user, name, progress):
        server = self.fake.servers.get(self.key(user, name))
        if server is None:
            return self.error(404, "no such server")
        if progress:
            return await self.stream_progress()
        if self.get_query_argument("wait", None) == "ready":
            timeout = float(self.get_query_argument("timeout"))
            if server.model["state"] == "pending":
                try:
                    await asyncio.wait_for(server.changed.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        self.write(server.model)

    async def stream_progress(self):
        self.set_header("Content-Type", "text/event-stream")
        self.fake.active_streams += 1
        try:
            for chunk in self.fake.progress_chunks or []:
                self.write(chunk)
                await self.flush()
                await asyncio.sleep(self.fake.progress_chunk_delay)
        except StreamClosedError:
            pass  # the client went away
        finally:
            self.fake.active_streams -= 1

    async def post(self, user, name, progress):
        key = self.key(user, name)
        server = self.fake.servers.get(key)
        if server and server.model["state"] in ("pending", "running"):
            if self.fake.post_answer_delays:
                await asyncio.sleep(self.fake.post_answer_delays.pop(0))
            return self.write(server.model)
        options = self.json_body().get("user_options", {})
        if options.get("profile") not in (None, "small", "large"):
            return self.error(400, f"unknown profile {options['profile']!r}")
        server = self.fake.add_server(*key)
        asyncio.ensure_future(self.fake.run_plan(server))
        if self.fake.post_answer_delays:
            await asyncio.sleep(self.fake.post_answer_delays.pop(0))
        self.set_status(202)
        self.write(server.model)

    async def delete(self, user, name, progress):
        server = self.fake.servers.get(self.key(user, name))
        if server is None:
            return self.error(404, "no such server")
        if server.model["state"] in ("stopped", "failed"):
            return self.write(server.model)
        server.set(state="stopping")
        if self.get_query_argument("wait", None) == "true":
            await self.finish_stopping(server)
            return self.write(server.model)
        asyncio.ensure_future(self.finish_stopping(server))
        self.set_status(202)
        self.write(server.model)

    async def finish_stopping(self, server):
        await asyncio.sleep(self.fake.stop_takes)
        server.set(state="stopped", exit_code=None)

    def json_body(self):
        return json.loads(self.request.body or b"{}")
