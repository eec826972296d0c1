"""Aggregate results whose errors wait for the expression to read them (VPL.md §5.4, §5.5).

An aggregate call inside an `if` branch or the right operand of `and`/`or` may not be evaluated;
its errors (the per-record errors of its argument and the failure of its result) then count
nothing. Such a call's result is handed to the item's expression as a `Pending` when it carries
errors, and the expression counts them where it reads the value, if it does.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A call's result (null when the call failed) and the errors its reading counts."""

    value: object
    errors: int


def pending_or_value(value: object, errors: int) -> object:
    """What the expression reads for a deferred call: the plain value when nothing is pending."""
    return Pending(value, errors) if errors else value
