"""Incremental parser for ``text/event-stream`` (server-sent events).

Bytes arrive in arbitrary chunks (an event, a line, even a UTF-8 character may
be split across chunks); ``feed`` returns the events completed so far.
Follows the WHATWG rules we need: lines end in LF, CRLF or CR; a blank line
ends an event; ``data:`` lines are joined with LF; ``:`` lines are comments;
other fields (``event``, ``id``, ``retry``) are ignored.
"""


class SSEParser:
    def __init__(self):
        self._buffer = b""
        self._data = []

    def feed(self, chunk):
        """Add bytes; return the list of completed events' data strings."""
        self._buffer += chunk
        events = []
        while True:
            line, found = self._next_line()
            if not found:
                break
            if line == "":
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
        return events

    def _next_line(self):
        buf = self._buffer
        lf = buf.find(b"\n")
        cr = buf.find(b"\r")
        if lf == -1 and cr == -1:
            return None, False
        if cr == -1 or (lf != -1 and lf < cr):
            end, rest = lf, lf + 1
        elif cr + 1 == len(buf):
            # a CR at the end may be the first half of a CRLF split across chunks
            return None, False
        else:
            end, rest = cr, cr + (2 if buf[cr + 1 : cr + 2] == b"\n" else 1)
        self._buffer = buf[rest:]
        return buf[:end].decode("utf-8", "replace"), True
