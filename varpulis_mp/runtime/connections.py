"""A live run's connectors opened: the plan's subscriptions as feed sources, its `.to`s as sinks.

Owns the step from plan data (engine/plan.py: each context's subscriptions and sinks) to built
partitions (io/ports.py), through each kind's `ConnectorKind` (io/connectors.py), and the start-up
checks that belong to it: a `password_env` variable that is not set, or a `file` connector's file
that cannot be opened (a missing file read without `follow`, a missing folder to write in), is a
configuration error naming it (exit 2), never a failure once the workers are up. The connectors are
built in the process that runs the live feed and the output router (docs/run.md says where that is).

Every sink is made to fail safely here (RUN.md §6): a circuit breaker per partition, reset after
`ConnectorOptions.circuit_reset_s`, and the run's dead letters for what it will not deliver.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from varpulis_mp.engine.plan import Plan
from varpulis_mp.io.circuit import DEFAULT_RESET_S, Circuit
from varpulis_mp.io.connectors import Subscription, connector_kind
from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.delivery import DeliverySink
from varpulis_mp.io.file_connector import open_for_appending, open_for_reading
from varpulis_mp.io.ports import Sink
from varpulis_mp.runtime.live_feed import FeedSource

__all__ = ["ConfigurationError", "ConnectorOptions", "open_connectors", "open_sinks", "open_sources", "sources_by_context"]


@dataclass(frozen=True)
class ConnectorOptions:
    """What `run`'s options say about connectors. The defaults: dead letters counted and logged
    (no file), circuits tried again after 30 s."""

    dead_letters: DeadLetters = field(default_factory=DeadLetters)
    circuit_reset_s: float = DEFAULT_RESET_S


class ConfigurationError(ValueError):
    """A connector cannot be set up from what the program and the environment say."""


def _params(plan: Plan, connector: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = dict(plan.connectors[connector].params)
    variable = params.get("password_env")
    if variable:
        value = os.environ.get(str(variable))
        if value is None:
            raise ConfigurationError(
                f"connector '{connector}': environment variable {variable} (password_env) is not set")
        params["password"] = value
    if "client_id" in overrides:
        params["client_id"] = overrides["client_id"]  # the process's own id (RUN.md §1.2)
    return params


def _check_opens(connector: str, path: str, opener: Callable[[str], int]) -> None:
    """Opens (and closes) a file as the run will, before any worker starts."""
    try:
        os.close(opener(path))
    except OSError as exc:
        raise ConfigurationError(f"connector '{connector}': cannot open {path}: {exc.strerror or exc}") from None


def open_sources(plan: Plan) -> list[FeedSource]:
    """One source per (connector, context): each holds that context's subscriptions of it (built
    when the feed starts)."""
    return [source for sources in sources_by_context(plan).values() for source in sources]


def sources_by_context(plan: Plan) -> dict[str, list[FeedSource]]:
    """`open_sources`, by the context whose worker runs each (that of the stream that declared it)."""
    found: dict[str, list[FeedSource]] = {}
    for ctx in plan.contexts:
        by_connector: dict[str, list[Any]] = {}
        for sub in ctx.subscriptions:
            by_connector.setdefault(sub.connector, []).append(sub)
        for name, subs in by_connector.items():
            kind = connector_kind(plan.connectors[name].kind)
            params = _params(plan, name, subs[0].params)
            source = kind.source(name, params, [Subscription(s.event_type, s.params) for s in subs], ctx.name)
            types = frozenset(s.event_type for s in subs)
            display = name
            if kind.kind == "file":
                display = str(params["path"])  # its lines' diagnostics name the file, as --input's do
                if not params["follow"]:
                    _check_opens(name, display, open_for_reading)
            found.setdefault(ctx.name, []).append(FeedSource(name, display, source=source, types=types))
    return found


def open_sinks(plan: Plan, options: ConnectorOptions | None = None) -> dict[str, list[Sink]]:
    """Each stream's `.to` sinks (descriptions, built where they run), in declaration order, each
    with its circuit breaker and the dead letters."""
    options = options or ConnectorOptions()
    circuit = Circuit(reset_s=options.circuit_reset_s)
    found: dict[str, list[Sink]] = {}
    for ctx in plan.contexts:
        for stream, sinks in ctx.sinks.items():
            for sink in sinks:
                kind = connector_kind(sink.kind)
                params = _params(plan, sink.connector, sink.params)
                if sink.kind == "file":
                    _check_opens(sink.connector, str(params["path"]), open_for_appending)
                made = kind.sink(sink.connector, params, sink.params, stream, ctx.name)
                if isinstance(made, DeliverySink):
                    made = made.guarded(circuit, options.dead_letters)
                found.setdefault(stream, []).append(made)
    return found


def open_connectors(plan: Plan, options: ConnectorOptions | None = None
                    ) -> tuple[dict[str, list[FeedSource]], dict[str, list[Sink]]]:
    """The program's subscriptions by context and its sinks by stream (both empty for a program
    without connectors)."""
    if not plan.connectors:
        return {}, {}
    return sources_by_context(plan), open_sinks(plan, options)
