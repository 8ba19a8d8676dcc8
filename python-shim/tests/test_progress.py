"""progress(): the SSE stream, including events split across chunks."""

import asyncio
import json

from fake_spawngate import TOKEN, unused_port

from spawngate._sse import SSEParser


def sse(event):
    return ("data: " + json.dumps(event, ensure_ascii=False) + "\n\n").encode("utf-8")


async def collect(spawner):
    return [event async for event in spawner.progress()]


def split_everywhere(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


async def test_progress_yields_events_split_across_chunks(fake, spawner_for):
    fake.add_server("alice", state="pending")
    stream = (
        b": keep-alive comment\n\n"
        + sse({"progress": 10, "message": "Pulling image für alice"})
        + b"data: not json\n\n"
        + sse({"progress": 50, "message": "Pod scheduled"}).replace(b"\n", b"\r\n")
        + sse({"progress": 100, "message": "Server ready", "ready": True, "url": "http://10.1.2.3:8888"})
        + sse({"progress": 100, "message": "after ready: must not be seen"})
    )
    # 7-byte chunks split "data:", the JSON, CRLF pairs and the two-byte "ü"
    fake.progress_chunks = split_everywhere(stream, 7)
    fake.progress_chunk_delay = 0.001
    events = await collect(spawner_for(fake.base_url))
    assert events == [
        {"progress": 10, "message": "Pulling image für alice"},
        {"progress": 50, "message": "Pod scheduled"},
        # the ready event is the hub's to announce (with the proxied URL), and nothing after it
    ]
    [get] = fake.of("GET", "/progress")
    assert get.path == "/api/users/alice/server/progress"
    assert get.headers["Authorization"] == f"token {TOKEN}"
    assert get.headers["Accept"] == "text/event-stream"


async def test_progress_ends_at_failed_event(fake, spawner_for):
    fake.add_server("alice", "gpu", state="pending")
    fake.progress_chunks = [
        sse({"progress": 30, "message": "Creating pod"}),
        sse({"progress": 100, "message": "ImagePullBackOff", "failed": True}),
        sse({"progress": 100, "message": "never"}),
    ]
    events = await collect(spawner_for(fake.base_url, server_name="gpu"))
    # the hub announces the failure itself, with start()'s exception (spawngate's reason)
    assert events == [{"progress": 30, "message": "Creating pod"}]
    assert fake.of("GET", "/progress")[0].path == "/api/users/alice/servers/gpu/progress"


async def test_progress_ends_quietly_on_404(fake, spawner_for):
    assert await collect(spawner_for(fake.base_url)) == []


async def test_progress_ends_quietly_when_unreachable(spawner_for):
    url = f"http://127.0.0.1:{unused_port()}"
    assert await collect(spawner_for(url)) == []


async def test_progress_can_be_closed_early(fake, spawner_for):
    fake.add_server("alice", state="pending")
    fake.progress_chunks = [sse({"progress": i, "message": f"step {i}"}) for i in range(1, 21)]
    gen = spawner_for(fake.base_url).progress()
    first = await gen.__anext__()
    await gen.aclose()
    assert first == {"progress": 1, "message": "step 1"}


def test_parser_byte_by_byte_with_all_line_endings():
    parser = SSEParser()
    stream = b"data: a\r\rdata: b\r\ndata: c\r\n\r\nid: 7\nevent: x\ndata:d1\ndata: d2\n\n"
    events = []
    for i in range(len(stream)):
        events += parser.feed(stream[i : i + 1])
    assert events == ["a", "b\nc", "d1\nd2"]


def test_parser_keeps_incomplete_event_for_next_chunk():
    parser = SSEParser()
    assert parser.feed(b'data: {"progress": 1') == []
    assert parser.feed(b"}\n") == []
    assert parser.feed(b"\n") == ['{"progress": 1}']


async def test_progress_through_jupyterhubs_own_wrapper(fake, spawner_for):
    fake.add_server("alice", state="pending")
    # what spawngate streams (src/servers/progress-messages.ts)
    fake.progress_chunks = [
        sse({"progress": 0, "message": "Server requested"}),
        sse({"progress": 10, "message": "Starting the server on the local backend"}),
        sse({"progress": 50, "message": "Waiting for the server to answer"}),
        sse({"progress": 100, "message": "Server ready at http://10.1.2.3:8888", "ready": True, "url": "http://10.1.2.3:8888"}),
    ]
    spawner = spawner_for(fake.base_url)
    spawner._spawn_pending = True  # what the hub sets while start() runs
    spawner._start_answered = True  # start() runs and spawngate has its request
    events = [event async for event in spawner._generate_progress()]
    # "Server requested" once (the hub's own), and spawngate's internal URL never reaches the page
    assert events == [
        {"progress": 0, "message": "Server requested"},
        {"progress": 10, "message": "Starting the server on the local backend"},
        {"progress": 50, "message": "Waiting for the server to answer"},
    ]


async def test_progress_asked_before_start_waits_for_the_start_request(fake, spawner_for):
    # The hub marks the spawn pending and may serve a progress request before it calls start():
    # the stream must be of this start, not a 404 for a server spawngate does not know yet.
    fake.plan["pending_for"] = 1
    fake.progress_chunks = [sse({"progress": 40, "message": "Local backend: Started process 4242"})]
    spawner = spawner_for(fake.base_url)
    spawner._spawn_pending = True
    progress = asyncio.ensure_future(collect(spawner))
    await asyncio.sleep(0.3)
    assert fake.of("GET", "/progress") == []
    url = await spawner.start()
    spawner._spawn_pending = False
    assert url == fake.url
    assert await progress == [{"progress": 40, "message": "Local backend: Started process 4242"}]
    [get] = fake.of("GET", "/progress")
    [post] = fake.of("POST")
    assert fake.requests.index(post) < fake.requests.index(get)
