"""The connector kinds by name: where the runtime turns a `connector` declaration into I/O.

`connector_kind("mqtt")` gives the `ConnectorKind` whose `source(...)` and `sink(...)` make the
Source and Sink descriptions of ports.py from plain data (RUN.md §1.1's parameters). Each kind's
module, and with it its client library, is imported only when a program uses that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from varpulis_mp.io.connector_spec import ConnectorCounters, ConnectorKind, Monitored, Subscription

__all__ = ["KINDS", "ConnectorCounters", "ConnectorKind", "Monitored", "Subscription", "connector_kind"]


def _mqtt() -> ConnectorKind:
    from varpulis_mp.io.mqtt import MQTT

    return MQTT


def _nats() -> ConnectorKind:
    from varpulis_mp.io.nats import NATS

    return NATS


def _file() -> ConnectorKind:
    from varpulis_mp.io.file_connector import FILE

    return FILE


def _http() -> ConnectorKind:
    from varpulis_mp.io.http_sink import HTTP

    return HTTP


_LOADERS: Final[dict[str, Callable[[], ConnectorKind]]] = {
    "mqtt": _mqtt,
    "nats": _nats,
    "file": _file,
    "http": _http,
}
KINDS: Final = tuple(_LOADERS)


def connector_kind(kind: str) -> ConnectorKind:
    """The kind named `kind`; ValueError for one that is not supported."""
    loader = _LOADERS.get(kind)
    if loader is None:
        raise ValueError(f"connector kind '{kind}' is not supported yet (supported: {', '.join(KINDS)})")
    return loader()
