"""Baseline for bench/channels/roundtrip.ts: jupyter_client's BlockingKernelClient talking ZMQ
directly to a kernel (no websocket). Run with Debian's /usr/bin/python3.

usage: direct_zmq.py <connection-file>
Then, per line read on stdin, an integer N: runs N sequential execute_request('1+1') and prints
one JSON line {"samples_ms": [...]}, each sample timed from send until both the execute_reply and
the iopub status idle for that request have arrived. EOF ends the script.
"""
import json
import sys
import time

from jupyter_client import BlockingKernelClient


def round_trip(kc: BlockingKernelClient) -> float:
    t0 = time.perf_counter()
    msg_id = kc.execute("1+1")
    got_reply = got_idle = False
    while not got_reply:
        reply = kc.get_shell_msg(timeout=30)
        got_reply = reply["parent_header"].get("msg_id") == msg_id
    while not got_idle:
        msg = kc.get_iopub_msg(timeout=30)
        got_idle = (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        )
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    kc = BlockingKernelClient(connection_file=sys.argv[1])
    kc.load_connection_file()
    kc.start_channels(hb=False)  # no heartbeat thread: a slow start under load is not "death"
    kc.wait_for_ready(timeout=60)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        n = int(line.strip() or 0)
        samples = [round_trip(kc) for _ in range(n)]
        print(json.dumps({"samples_ms": samples}), flush=True)
    kc.stop_channels()


if __name__ == "__main__":
    main()
