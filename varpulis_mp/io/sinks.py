"""Where output records go: the `--output jsonl` writer and the human output of `simulate` and `run`.

The two forms live in `jsonl` (OUTPUT.md §1) and `human` (OUTPUT.md §2); this module is the one
place the rest of the program imports them from.
"""

from __future__ import annotations

from varpulis_mp.io.human import (
    RUN_TITLES,
    SIMULATION_TITLES,
    HumanSink,
    HumanView,
    Titles,
    format_record,
    format_summary,
    format_value,
)
from varpulis_mp.io.jsonl import JsonlSink, jsonl_line

__all__ = [
    "RUN_TITLES",
    "SIMULATION_TITLES",
    "HumanSink",
    "HumanView",
    "JsonlSink",
    "Titles",
    "format_record",
    "format_summary",
    "format_value",
    "jsonl_line",
]
