"""Topic patterns and which subscription a message belongs to: pure, no I/O.

Owns the two wildcard grammars (MQTT topic filters with `+` and `#`, NATS subjects with `*` and
`>`) and the routing of RUN.md §1.3: a message arrives on a topic; the subscriptions of its
connector whose pattern matches that topic decide its type.

A broker may deliver a message once per matching subscription of a client or once in all (MQTT
3.1.1 allows both; mosquitto 2 sends one copy, other brokers one per filter, and a NATS client
gets one per subscription); to be independent of that, `wire_patterns` merges
overlapping patterns into one broader pattern that covers them, so that every message reaches the
client exactly once and the matching is done here, against the patterns the program wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["MQTT_TOPICS", "NATS_SUBJECTS", "Route", "Router", "TopicSyntax", "WirePattern", "wire_patterns"]

# Topics remembered with their matching types; bounded because topics may carry ids without end.
_CACHE_LIMIT: Final = 4096


@dataclass(frozen=True, slots=True)
class TopicSyntax:
    """One wildcard grammar: the separator, the one-level and the many-level wildcards."""

    what: str  # how messages call a pattern: "MQTT topic filter", "NATS subject"
    separator: str
    one: str
    many: str
    many_matches_parent: bool  # MQTT: "a/#" also matches "a"; NATS: "a.>" needs one more token
    dollar_shielded: bool  # MQTT: a wildcard first level never matches a topic starting with "$"
    empty_levels: bool  # MQTT allows "a//b"; NATS has no empty tokens

    def problem(self, pattern: str, wildcards: bool = True) -> str | None:
        """Why `pattern` is not a valid pattern (or, without wildcards, a publishable topic); None if it is."""
        if not pattern:
            return f"the {self.what} is empty"
        if any(c in pattern for c in "\0\n\r") or (not self.empty_levels and any(c.isspace() for c in pattern)):
            return f"the {self.what} '{pattern}' holds a forbidden character"
        levels = pattern.split(self.separator)
        for i, level in enumerate(levels):
            if not level and not self.empty_levels:
                return f"the {self.what} '{pattern}' has an empty token"
            if self.one in level or self.many in level:
                if not wildcards:
                    return f"a topic to publish to cannot hold wildcards ('{pattern}')"
                if level not in (self.one, self.many):
                    return f"a wildcard must fill a whole level of the {self.what} '{pattern}'"
                if level == self.many and i != len(levels) - 1:
                    return f"'{self.many}' may only end the {self.what} '{pattern}'"
        return None

    def matches(self, pattern: str, topic: str) -> bool:
        """Whether a message on `topic` matches `pattern`."""
        if pattern == topic:
            return True
        levels = pattern.split(self.separator)
        parts = topic.split(self.separator)
        if self.dollar_shielded and topic.startswith("$") and levels[0] in (self.one, self.many):
            return False
        for i, level in enumerate(levels):
            if level == self.many:
                return len(parts) >= i if self.many_matches_parent else len(parts) > i
            if i >= len(parts) or (level != self.one and level != parts[i]):
                return False
        return len(levels) == len(parts)

    def overlaps(self, a: str, b: str) -> bool:
        """Whether some topic matches both patterns."""
        la, lb = a.split(self.separator), b.split(self.separator)
        if self.dollar_shielded and self._shields(la[0], lb[0]):
            return False
        for i in range(max(len(la), len(lb))):
            x = la[i] if i < len(la) else None
            y = lb[i] if i < len(lb) else None
            if x == self.many:
                return y is not None or self.many_matches_parent
            if y == self.many:
                return x is not None or self.many_matches_parent
            if x is None or y is None:
                return False
            if x != y and self.one not in (x, y):
                return False
        return True

    def _shields(self, x: str, y: str) -> bool:
        wild = (self.one, self.many)
        return (x in wild and y.startswith("$")) or (y in wild and x.startswith("$"))

    def cover(self, a: str, b: str) -> str:
        """A pattern matching every topic that either overlapping pattern matches."""
        la, lb = a.split(self.separator), b.split(self.separator)
        out: list[str] = []
        for i in range(max(len(la), len(lb))):
            x = la[i] if i < len(la) else None
            y = lb[i] if i < len(lb) else None
            if x is None or y is None or self.many in (x, y):
                out.append(self.many)
                break
            out.append(x if x == y else self.one)
        return self.separator.join(out)


MQTT_TOPICS: Final = TopicSyntax("MQTT topic filter", "/", "+", "#", True, True, True)
NATS_SUBJECTS: Final = TopicSyntax("NATS subject", ".", "*", ">", False, False, False)


@dataclass(slots=True)
class WirePattern:
    """A pattern the client subscribes to, and the indices of the program's patterns it covers."""

    pattern: str
    members: list[int] = field(default_factory=list)


def wire_patterns(syntax: TopicSyntax, patterns: Sequence[str]) -> list[WirePattern]:
    """Patterns to subscribe to, pairwise without overlap, that together cover `patterns`."""
    wires: list[WirePattern] = []
    for index, pattern in enumerate(patterns):
        merged = WirePattern(pattern, [index])
        changed = True
        while changed:
            changed = False
            for wire in wires:
                if wire.pattern == merged.pattern or syntax.overlaps(wire.pattern, merged.pattern):
                    wires.remove(wire)
                    merged = WirePattern(syntax.cover(wire.pattern, merged.pattern),
                                         sorted(wire.members + merged.members))
                    changed = True
                    break
        wires.append(merged)
    wires.sort(key=lambda wire: wire.members[0])  # in the order the program wrote them
    return wires


@dataclass(frozen=True, slots=True)
class Route:
    """One subscription as routing sees it: the pattern it was declared with and its event type."""

    pattern: str
    event_type: str


class Router:
    """Decides the types of a message from its topic and the type it names (RUN.md §1.3)."""

    def __init__(self, syntax: TopicSyntax, routes: Sequence[Route], wires: Sequence[str]) -> None:
        self._syntax = syntax
        self._routes = tuple(routes)
        self._wires = tuple(wires)
        self._cache: dict[str, tuple[str, ...]] = {}

    def types_on(self, topic: str) -> tuple[str, ...]:
        """The distinct event types of the subscriptions matching `topic`, in declaration order."""
        types = self._cache.get(topic)
        if types is None:
            found: list[str] = []
            for route in self._routes:
                if route.event_type not in found and self._syntax.matches(route.pattern, topic):
                    found.append(route.event_type)
            types = tuple(found)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = types
        return types

    def expected(self, topic: str) -> bool:
        """Whether a message on `topic` was asked for (a broader wire pattern may match more)."""
        return any(self._syntax.matches(wire, topic) for wire in self._wires)
