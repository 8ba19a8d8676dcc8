"""``user_options`` on the hub side: spawngate applies them, the hub only has to be able to send them.

spawngate validates the content (profile slugs, option values) against what it
offers the user and refuses bad options with a message; here only the shape is
checked, since it arrives unchecked from the hub's REST API.
"""

import json

from .errors import SpawnRefused


def sendable_user_options(user_options):
    """``user_options`` as the JSON object start() sends; ``SpawnRefused`` (400) if it cannot be one."""
    if user_options is None:
        return {}
    if not isinstance(user_options, dict):
        raise SpawnRefused(f"user_options must be a JSON object, not {type(user_options).__name__}")
    try:
        json.dumps(user_options)
    except (TypeError, ValueError) as e:
        raise SpawnRefused(f"user_options cannot be sent to spawngate: {e}") from e
    return dict(user_options)


def apply_user_options(spawner, user_options):
    """The default ``Spawner.apply_user_options`` hook (JupyterHub >= 5.3).

    spawngate, not the hub, applies ``user_options`` (start() sends them), so
    nothing is set on the spawner; declaring the hook tells the hub they are
    handled (otherwise 5.3+ logs "Received unhandled user_options" on every
    spawn with a profile). It refuses options that cannot be sent, before the
    hub calls start(); 5.x shows the ``HTTPError``'s message.
    """
    sendable_user_options(user_options)
