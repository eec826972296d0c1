"""The connector kinds of RUN.md §1.1 as data: each kind's parameters, their types, defaults and
rules, for the declaration, for `.from` and for `.to`.

Owns what a parameter may be; `check_connectors` applies it to a program. Parameter names are
Varpulis' own, so that the resolved parameters (a `dict` keyed by these names) are what the
connector modules read. Durations are milliseconds (an int) once resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ParamType = Literal["Int", "String", "Bool", "Duration"]

Problem = tuple[str, str | None] | None  # None, or what is wrong: (message, hint)
Rule = Callable[[object], Problem]  # what a value of the right type must also pass


@dataclass(frozen=True)
class FromConnector:
    """Default of a `.from`/`.to` parameter: the connector's own value of `param`."""

    param: str


@dataclass(frozen=True)
class StreamOutputTopic:
    """Default of the mqtt `.to` topic: `"<stream name>-output"` (Varpulis' default)."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. `default` is a plain value, None (none: the parameter is then None unless
    given), or a `FromConnector` / `StreamOutputTopic` resolved where the parameter is used."""

    name: str
    type: ParamType
    required: bool = False
    default: object = None
    rule: Rule | None = None


@dataclass(frozen=True)
class KindSpec:
    """A connector kind: its declaration's parameters, and those of `.from` (None: the kind
    cannot be read, it is a sink only) and `.to`."""

    name: str
    params: tuple[ParamSpec, ...]
    from_params: tuple[ParamSpec, ...] | None
    to_params: tuple[ParamSpec, ...]


# ---------------------------------------------------------------- rules


def _not_empty(name: str) -> Rule:
    def rule(value: object) -> Problem:
        return (f"{name} must not be empty", None) if value == "" else None

    return rule


def _qos(value: object) -> Problem:
    if value in (0, 1):
        return None
    return "qos must be 0 or 1", "0: at most once, 1: at least once (QoS 2 is not supported)"


def _port(value: object) -> Problem:
    assert isinstance(value, int)
    return None if 1 <= value <= 65535 else ("port must be between 1 and 65535", None)


def _keepalive(value: object) -> Problem:
    # MQTT carries the keep-alive as a 16-bit number of seconds; 0 turns it off.
    assert isinstance(value, int)
    if value % 1000 == 0 and 0 <= value <= 65_535_000:
        return None
    return "keepalive must be a whole number of seconds from 0s to 65535s", "0s turns keep-alive off"


def _positive(name: str) -> Rule:
    def rule(value: object) -> Problem:
        assert isinstance(value, int)
        return None if value > 0 else (f"{name} must be positive", None)

    return rule


HTTP_METHODS = ("POST", "PUT", "PATCH")


def _method(value: object) -> Problem:
    if value in HTTP_METHODS:
        return None
    return "method must be " + ", ".join(HTTP_METHODS[:-1]) + " or " + HTTP_METHODS[-1], None


def _url(value: object) -> Problem:
    assert isinstance(value, str)
    if value.startswith(("http://", "https://")) and len(value.split("://", 1)[1]) > 0:
        return None
    return "url must be an http:// or https:// URL", None


def _servers(value: object) -> Problem:
    assert isinstance(value, str)
    if all(part.strip() for part in value.split(",")):
        return None
    return "servers must be comma-separated URLs", 'for example "nats://127.0.0.1:4222"'


def _topic_rule(separator: str, one: str, rest: str, *, wildcards: bool) -> Rule:
    """A topic (MQTT, levels split by `/`) or subject (NATS, tokens split by `.`): `one` may stand
    for a whole level, `rest` for the whole last level; neither in a topic that is published to."""

    def rule(value: object) -> Problem:
        assert isinstance(value, str)
        if value == "":
            return "topic must not be empty", None
        levels = value.split(separator)
        for i, level in enumerate(levels):
            if one not in level and rest not in level:
                if separator == "." and (level == "" or " " in level):
                    return "topic is not a valid NATS subject", "tokens are separated by single dots, no spaces"
                continue
            if not wildcards:
                return f"topic cannot hold the wildcards '{one}' and '{rest}' here", (
                    "wildcards subscribe to many topics; a record is published to one")
            if level == rest and i != len(levels) - 1:
                return f"'{rest}' may only be the last level of a topic", None
            if level not in (one, rest):
                return f"'{one}' and '{rest}' must stand alone between '{separator}'s", None
        return None

    return rule


# ---------------------------------------------------------------- the kinds

_MQTT = KindSpec(
    "mqtt",
    params=(
        ParamSpec("host", "String", required=True, rule=_not_empty("host")),
        ParamSpec("port", "Int", default=1883, rule=_port),
        ParamSpec("client_id", "String", default="varpulis-mp", rule=_not_empty("client_id")),
        ParamSpec("qos", "Int", default=0, rule=_qos),
        ParamSpec("username", "String"),
        ParamSpec("password", "String"),
        ParamSpec("password_env", "String", rule=_not_empty("password_env")),
        ParamSpec("keepalive", "Duration", default=60_000, rule=_keepalive),
    ),
    from_params=(
        ParamSpec("topic", "String", required=True, rule=_topic_rule("/", "+", "#", wildcards=True)),
        ParamSpec("qos", "Int", default=FromConnector("qos"), rule=_qos),
        ParamSpec("client_id", "String", default=FromConnector("client_id"), rule=_not_empty("client_id")),
    ),
    to_params=(
        ParamSpec("topic", "String", default=StreamOutputTopic(), rule=_topic_rule("/", "+", "#", wildcards=False)),
        ParamSpec("qos", "Int", default=FromConnector("qos"), rule=_qos),
    ),
)

_NATS = KindSpec(
    "nats",
    params=(
        ParamSpec("servers", "String", required=True, rule=_servers),
        ParamSpec("queue_group", "String", rule=_not_empty("queue_group")),
    ),
    from_params=(
        ParamSpec("topic", "String", required=True, rule=_topic_rule(".", "*", ">", wildcards=True)),
        ParamSpec("queue_group", "String", default=FromConnector("queue_group"), rule=_not_empty("queue_group")),
    ),
    to_params=(ParamSpec("topic", "String", required=True, rule=_topic_rule(".", "*", ">", wildcards=False)),),
)

_FILE = KindSpec(
    "file",
    params=(
        ParamSpec("path", "String", required=True, rule=_not_empty("path")),
        ParamSpec("follow", "Bool", default=False),
    ),
    from_params=(),
    to_params=(),
)

_HTTP = KindSpec(
    "http",
    params=(
        ParamSpec("url", "String", required=True, rule=_url),
        ParamSpec("method", "String", default="POST", rule=_method),
        ParamSpec("timeout", "Duration", default=5_000, rule=_positive("timeout")),
    ),
    from_params=None,
    to_params=(),
)

KINDS: dict[str, KindSpec] = {k.name: k for k in (_MQTT, _NATS, _FILE, _HTTP)}
KIND_NAMES = ", ".join(KINDS)  # for hints: "mqtt, nats, file, http"

# Parameters whose value is a secret: never shown by `plan` or written to a log (RUN.md §2).
SECRET_PARAMS = frozenset({"password"})
