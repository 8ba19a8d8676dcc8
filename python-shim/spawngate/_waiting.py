"""The waiting parts of RemoteSpawner: long-poll until started, stop until
stopped, relay the progress stream.

Functions of the spawner (they use its path, log and timeouts), kept apart so
that spawner.py reads as the contract. Retries here are only for spawngate
being briefly unavailable while the hub is already waiting anyway.
"""

import asyncio
import json

from ._sse import SSEParser
from .errors import ServiceUnreachable, SpawnFailed, SpawngateError, SpawnTimeout

# spawngate answers a long-poll after at most this many seconds (docs/hub-api.md)
MAX_WAIT = 60
# pause between retries while spawngate is briefly unavailable during start/stop
RETRY_DELAYS = (0.5, 1, 2, 5)


def _retry_delay(retries):
    return RETRY_DELAYS[min(retries, len(RETRY_DELAYS) - 1)]


def _failure(model, fallback):
    model = model if isinstance(model, dict) else {}
    return SpawnFailed(
        model.get("message") or fallback,
        model.get("last_output") or [],
        exit_code=model.get("exit_code"),
    )


async def wait_until_started(spawner, service, model, deadline):
    """Long-poll until the model leaves ``pending``; return the running model."""
    loop = asyncio.get_running_loop()
    retries = 0
    while True:
        state = model.get("state")
        if state == "running":
            return model
        if state == "failed":
            raise _failure(model, "the server failed to start")
        if state in ("stopping", "stopped"):
            raise _failure(model, f"the server is {state} instead of starting")
        if state != "pending":
            raise SpawngateError(f"spawngate reported unknown server state {state!r}")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise SpawnTimeout(
                f"the server was still pending after {spawner.start_timeout} seconds"
            )
        wait = max(1, min(MAX_WAIT, int(remaining)))
        asked_at = loop.time()
        try:
            resp = await service.request(
                "GET",
                spawner._path(),
                query={"wait": "ready", "timeout": str(wait)},
                timeout=wait + spawner.request_timeout,
            )
        except ServiceUnreachable as e:
            if loop.time() + _retry_delay(retries) >= deadline:
                raise
            spawner.log.warning("Waiting for %s: %s; retrying", spawner._log_name, e.cause)
            await asyncio.sleep(_retry_delay(retries))
            retries += 1
            continue
        if resp.status == 404:
            raise SpawnFailed("spawngate lost the record of the server while it was starting")
        if resp.status >= 500 and loop.time() + _retry_delay(retries) < deadline:
            spawner.log.warning(
                "Waiting for %s: spawngate answered %s; retrying", spawner._log_name, resp.status
            )
            await asyncio.sleep(_retry_delay(retries))
            retries += 1
            continue
        if not resp.ok or not isinstance(resp.json, dict):
            raise SpawngateError(
                f"spawngate could not report the server: {resp.message}", status=resp.status
            )
        retries = 0
        model = resp.json
        spawner._remember(model)
        if model.get("state") == "pending" and loop.time() - asked_at < 0.5:
            # spawngate answered at once although still pending: don't spin
            await asyncio.sleep(0.5)


async def stop_until_stopped(spawner, service, deadline):
    """DELETE ``?wait=true`` until spawngate reports the server gone, or ``deadline``."""
    loop = asyncio.get_running_loop()
    retries = 0
    while True:
        wait = max(1, min(MAX_WAIT, int(deadline - loop.time())))
        try:
            resp = await service.request(
                "DELETE",
                spawner._path(),
                query={"wait": "true", "timeout": str(wait)},
                timeout=wait + spawner.request_timeout,
            )
        except ServiceUnreachable as e:
            if spawner.poll_outage_policy == "assume-stopped":
                spawner.log.warning("%s; treating %s as stopped", e, spawner._log_name)
                return
            if loop.time() + _retry_delay(retries) >= deadline:
                raise
            spawner.log.warning("Stopping %s: %s; retrying", spawner._log_name, e.cause)
            await asyncio.sleep(_retry_delay(retries))
            retries += 1
            continue
        if resp.status == 404:
            return
        if resp.status >= 400:
            raise SpawngateError(
                f"spawngate could not stop the server: {resp.message}", status=resp.status
            )
        model = resp.json if isinstance(resp.json, dict) else {}
        if model.get("state") in ("stopped", "failed") or not model:
            return
        if loop.time() >= deadline:
            spawner.log.warning(
                "%s is still %s after %s seconds; spawngate keeps stopping it",
                spawner._log_name,
                model.get("state"),
                spawner.stop_timeout,
            )
            return
        await asyncio.sleep(0.5)


def _is_request_event(event):
    """spawngate's opening event (progress 0, "Server requested"): the hub yields its own first."""
    progress = event.get("progress")
    return isinstance(progress, (int, float)) and progress <= 0


async def progress_events(spawner, service):
    """Relay the progress stream as ``{progress, message}`` dicts (see RemoteSpawner.progress)."""
    queue = asyncio.Queue()
    parser = SSEParser()
    done = object()
    closed = []

    def on_chunk(chunk):
        if closed:
            # nobody reads any more; raising here would make tornado log an
            # "Uncaught exception", so drop the data until spawngate ends the
            # stream (it does after ready/failed) or the request times out
            return
        for data in parser.feed(chunk):
            queue.put_nowait(data)

    fetch = asyncio.ensure_future(
        service.request(
            "GET",
            spawner._path("/progress"),
            timeout=spawner.start_timeout + spawner.request_timeout,
            streaming_callback=on_chunk,
            accept="text/event-stream",
        )
    )

    def on_done(future):
        queue.put_nowait(done)
        if not future.cancelled() and future.exception() is not None:
            # retrieved here, so asyncio never warns about it
            spawner.log.debug("Progress stream of %s ended: %s", spawner._log_name, future.exception())

    fetch.add_done_callback(on_done)
    try:
        while True:
            data = await queue.get()
            if data is done:
                break
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("ready") or event.get("failed"):
                # the hub announces the outcome itself: ready with the proxied
                # URL, failed with start()'s exception (spawngate's reason)
                break
            if _is_request_event(event):
                continue
            out = {k: event[k] for k in ("progress", "message", "html_message") if k in event}
            if out:
                yield out
    finally:
        closed.append(True)
