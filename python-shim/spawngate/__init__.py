"""spawngate: the Python side of the spawngate service.

``spawngate.RemoteSpawner`` is a JupyterHub spawner that proxies
start/poll/stop/progress to spawngate over HTTP (``c.JupyterHub.spawner_class =
"spawngate"``).

``RemoteSpawner`` is imported lazily (PEP 562) so that ``import spawngate``
does not require JupyterHub: other modules of this package run in places
without a hub (e.g. inside kernel pods).
"""

__version__ = "0.1.0"

__all__ = ["RemoteSpawner", "__version__"]


def __getattr__(name):
    if name == "RemoteSpawner":
        from .spawner import RemoteSpawner

        return RemoteSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["RemoteSpawner"])
