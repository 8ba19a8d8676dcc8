"""A kernel launcher for tests that speaks Enterprise Gateway's response-address protocol.

Written from the protocol: it picks its own five kernel ports and a communication port inside
--port-range, makes its own HMAC key, writes the connection file, sends the encrypted connection
information to --response-address, serves {"signum"}/{"shutdown"} requests on the communication
port, then runs ipykernel in this process. Every request it served is kept in the module
`sg_eg_launcher_log` so a test can read them from inside the kernel.

In a container, and for EG's stock kernelspecs (python_distributed), it runs as EG's launchers do
without a connection file argument: it writes one of its own in the temp directory (TMPDIR first),
named `kernel-<id>_*.json` as EG's launch_ipykernel.py names it. In a container there is no resource
dir either. Where one host stands in for many pods (the Kubernetes
stand-in), `SPAWNGATE_BIND_IP` is the pod's address: it listens there and sends from there, as a
pod's own network namespace would. `SG_TEST_PAYLOAD_VERSION=0` makes it send a version-0 payload
(EG 1.x: the connection JSON, '%'-padded, AES-ECB under the kernel id's first 16 characters);
`SG_TEST_REPORT_DELAY` seconds to wait before reporting.
"""
import argparse
import base64
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
import types
import uuid

from cryptography.hazmat.primitives import padding as sympad
from cryptography.hazmat.primitives.asymmetric import padding as asympad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_der_public_key

log = types.ModuleType("sg_eg_launcher_log")
log.requests = []
sys.modules["sg_eg_launcher_log"] = log


BIND_IP = os.environ.get("SPAWNGATE_BIND_IP", "0.0.0.0")


def bind_in_range(lower, upper):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if lower == 0 and upper == 0:
        sock.bind((BIND_IP, 0))
        return sock
    # Random order, as EG's launchers pick: kernels launched together must not all try the lowest ports
    # first, or one takes the ports another has just freed for its ipykernel to bind.
    candidates = list(range(lower, upper + 1))
    random.shuffle(candidates)
    for candidate in candidates:
        try:
            sock.bind((BIND_IP, candidate))
            return sock
        except OSError:
            continue
    raise RuntimeError(f"no free port in {lower}..{upper}")


def encrypt(plain, public_key_b64):
    aes_key = os.urandom(16)
    padder = sympad.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    conn_info = enc.update(padded) + enc.finalize()
    rsa = load_der_public_key(base64.b64decode(public_key_b64))
    wrapped = rsa.encrypt(aes_key, asympad.PKCS1v15())
    body = {"version": 1, "key": base64.b64encode(wrapped).decode(), "conn_info": base64.b64encode(conn_info).decode()}
    return base64.b64encode(json.dumps(body).encode())


def legacy(plain, kernel_id):
    padded = plain + b"%" * (16 - len(plain) % 16)
    enc = Cipher(algorithms.AES(kernel_id[:16].encode()), modes.ECB()).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize())


def serve_comm(sock, pid):
    sock.listen(4)
    while True:
        conn, _ = sock.accept()
        data = b""
        while True:
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
        conn.close()
        request = json.loads(data)
        log.requests.append(request)
        if request.get("signum"):
            os.kill(pid, int(request["signum"]))
        if request.get("shutdown"):
            os._exit(0)


def main():
    p = argparse.ArgumentParser()
    # EG's stock kernelspecs (python_distributed) spell them --RemoteProcessProxy.kernel-id and so on.
    p.add_argument("--kernel-id", "--RemoteProcessProxy.kernel-id", dest="kernel_id", required=True)
    p.add_argument("--port-range", "--RemoteProcessProxy.port-range", dest="port_range", required=True)
    p.add_argument("--response-address", "--RemoteProcessProxy.response-address", dest="response_address", required=True)
    p.add_argument("--public-key", "--RemoteProcessProxy.public-key", dest="public_key", required=True)
    p.add_argument("--RemoteProcessProxy.spark-context-initialization-mode", dest="init_mode")
    p.add_argument("--resource-dir")
    p.add_argument("connection_file", nargs="?")
    a = p.parse_args()
    for arg in sys.argv[1:]:
        if "{" in arg:
            raise SystemExit(f"placeholder left unsubstituted: {arg}")
    if a.kernel_id != os.environ.get("KERNEL_ID"):
        raise SystemExit("--kernel-id differs from KERNEL_ID")
    if a.resource_dir is not None and not os.path.isfile(os.path.join(a.resource_dir, "kernel.json")):
        raise SystemExit("--resource-dir is not the kernelspec directory")
    if a.connection_file is None:
        # Named as EG's launch_ipykernel.py names it, in tempfile's directory (TMPDIR first).
        fd, a.connection_file = tempfile.mkstemp(prefix=f"kernel-{a.kernel_id}_", suffix=".json")
        os.close(fd)
    lower, upper = (int(x) for x in a.port_range.split(".."))

    # All six are held at once so they differ; the kernel's five are freed for ipykernel to bind.
    socks = [bind_in_range(lower, upper) for _ in range(6)]
    comm = socks.pop()
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    info = dict(zip(["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"], ports))
    info.update(ip=BIND_IP, transport="tcp", signature_scheme="hmac-sha256", key=str(uuid.uuid4()))
    with open(a.connection_file, "w") as f:
        json.dump(info, f)
    report = dict(info, kernel_id=a.kernel_id, pid=os.getpid(), comm_port=comm.getsockname()[1])
    if os.environ.get("SG_TEST_PAYLOAD_VERSION") == "0":
        del report["kernel_id"]  # version 0 did not name the kernel
        payload = legacy(json.dumps(report).encode(), a.kernel_id)
    else:
        payload = encrypt(json.dumps(report).encode(), a.public_key)
    threading.Thread(target=serve_comm, args=(comm, os.getpid()), daemon=True).start()
    time.sleep(float(os.environ.get("SG_TEST_REPORT_DELAY", "0")))
    host, port = a.response_address.rsplit(":", 1)
    source = None if BIND_IP == "0.0.0.0" else (BIND_IP, 0)
    with socket.create_connection((host, int(port)), source_address=source) as s:
        s.sendall(payload)

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance(connection_file=a.connection_file, ip=BIND_IP)
    app.initialize([])
    app.start()


if __name__ == "__main__":
    main()
