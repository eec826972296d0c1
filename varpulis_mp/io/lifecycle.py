"""Lifecycle log lines: one line for each thing an operator watches happen (RUN.md §5).

Owns `log_event`, how any layer logs such a line: the message (all the text format shows), a
short event name (`connector_connected`, `circuit_opened`, `drain_started`, ...) and structured
fields, which the JSON format (runtime/logs.py) writes as members of the line's object. It lives
in io, the lowest layer that logs, so that the connectors and the runtime log the same way;
`connector_event` is the connectors' logger's form, `runtime.logs.lifecycle` the runtime's.

A message and its fields never hold a secret: a connector is named by its declared name, a broker
by host and port, never by a URL that may carry credentials.
"""

from __future__ import annotations

import logging

__all__ = ["CONNECTORS_LOG", "connector_event", "log_event"]

CONNECTORS_LOG = logging.getLogger("varpulis_mp.connectors")


def log_event(logger: logging.Logger, event: str, message: str, level: int = logging.INFO, /,
              **fields: object) -> None:
    """Log `message` as the lifecycle line `event`, with `fields` for the JSON format."""
    if logger.isEnabledFor(level):
        # "%s": a message is text as it is, never a format string (a topic may hold a '%').
        logger.log(level, "%s", message, extra={"event": event, "fields": fields})


def connector_event(event: str, message: str, level: int = logging.INFO, /, **fields: object) -> None:
    """A connector's lifecycle line (logger `varpulis_mp.connectors`)."""
    log_event(CONNECTORS_LOG, event, message, level, **fields)
