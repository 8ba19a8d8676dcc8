"""The spawn options form: spawngate profiles rendered as a radio list.

Modelled on KubeSpawner's ``profile_list`` form; the submitted field is
``profile`` (the slug). Every value coming from spawngate is HTML-escaped.

When the profiles cannot be listed the form is an error notice instead (the
hub would otherwise answer its spawn page with a bare 500), and submitting it
is refused with a message, so nobody silently gets the default profile.
"""

from html import escape

from .errors import SpawnRefused

# hidden field of the error notice; its presence in a form post means "no profile could be offered"
UNAVAILABLE_FIELD = "spawngate_profiles_unavailable"
UNAVAILABLE_REFUSAL = (
    "No server was started because the server profiles could not be listed."
    " Reload this page to try again."
)


def _number(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _range(request, limit, unit):
    if request is not None and limit is not None and request != limit:
        return f"{_number(request)}–{_number(limit)} {unit}"
    value = limit if limit is not None else request
    return f"{_number(value)} {unit}"


def resources_summary(resources):
    """Human summary of a profile's resources, e.g. ``CPU 0.5–2 cores · memory 512–4096 MiB``."""
    resources = resources or {}
    parts = []
    cpu_req, cpu_lim = resources.get("cpu_request"), resources.get("cpu_limit")
    if cpu_req is not None or cpu_lim is not None:
        parts.append("CPU " + _range(cpu_req, cpu_lim, "cores"))
    mem_req, mem_lim = resources.get("memory_request_mib"), resources.get("memory_limit_mib")
    if mem_req is not None or mem_lim is not None:
        parts.append("memory " + _range(mem_req, mem_lim, "MiB"))
    if resources.get("gpu_limit"):
        parts.append(f"GPU {_number(resources['gpu_limit'])}")
    return " · ".join(parts)


def render_profiles_form(profiles):
    """HTML for the profiles; ``""`` (no form: spawn directly) when there is at most one."""
    profiles = [p for p in profiles if isinstance(p, dict) and p.get("slug")]
    if len(profiles) <= 1:
        return ""
    default = next((p["slug"] for p in profiles if p.get("default")), profiles[0]["slug"])
    items = []
    for index, profile in enumerate(profiles):
        slug = str(profile["slug"])
        element_id = f"spawngate-profile-{index}"
        title = escape(str(profile.get("display_name") or slug))
        description = profile.get("description")
        summary = resources_summary(profile.get("resources"))
        details = ""
        if description:
            details += f" &ndash; {escape(str(description))}"
        if summary:
            details += f'<br><small class="text-muted">{escape(summary)}</small>'
        checked = " checked" if slug == default else ""
        items.append(
            f'<label for="{element_id}" class="form-control input-group" style="height: auto">\n'
            f'  <input type="radio" name="profile" id="{element_id}" value="{escape(slug)}"{checked}>\n'
            f"  <strong>{title}</strong>{details}\n"
            "</label>"
        )
    return (
        '<div class="form-group" id="spawngate-profiles">\n'
        "<p>Choose a server profile:</p>\n" + "\n".join(items) + "\n</div>"
    )


def render_unavailable(message):
    """The form shown when spawngate could not list profiles: ``message`` and how to retry."""
    return (
        '<div class="alert alert-danger" id="spawngate-profiles-error" role="alert">\n'
        f"<p><strong>Server profiles are unavailable.</strong> {escape(message)}</p>\n"
        "<p>Reload this page to try again.</p>\n"
        "</div>\n"
        f'<input type="hidden" name="{UNAVAILABLE_FIELD}" value="1">'
    )


def profile_from_form(form_data):
    """``options_from_form``: ``{"profile": slug}``, or ``{}`` when no profile was chosen.

    Form posts arrive as ``{name: [values]}``; ``/spawn?profile=x`` query
    arguments (``options_from_query`` in JupyterHub 3) as ``{name: value}``.
    Raises ``SpawnRefused`` for a post of the error notice (``render_unavailable``):
    the hub shows its message above the form, which it renders again.
    """
    if UNAVAILABLE_FIELD in (form_data or {}):
        raise SpawnRefused(UNAVAILABLE_REFUSAL, status=503)
    value = (form_data or {}).get("profile")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value:
        return {}
    return {"profile": str(value)}
