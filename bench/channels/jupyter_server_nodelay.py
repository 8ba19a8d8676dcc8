"""Diagnosis row of bench/channels/roundtrip.ts: Debian's jupyter_server 1.23, unchanged except
that its kernel websocket turns TCP_NODELAY on (tornado's websocket leaves Nagle's algorithm on
after the HTTP upgrade, and jupyter_server never calls `set_nodelay(True)`).

usage: /usr/bin/python3 jupyter_server_nodelay.py <jupyter_server arguments…>
"""
import sys

from jupyter_server.services.kernels.handlers import ZMQChannelsHandler

_open = ZMQChannelsHandler.open


def _open_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return _open(self, *args, **kwargs)


ZMQChannelsHandler.open = _open_nodelay

if __name__ == "__main__":
    from jupyter_server.serverapp import main

    sys.exit(main())
