"""The language front end in one call: program text to CheckedProgram (parse, then check).

Owns nothing but the composition, so that the engine, the runtime and the command line load a
program the same way.
"""

from __future__ import annotations

from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.checker import check_program
from varpulis_mp.lang.parser import parse_program


def load_program(data: bytes | str, path: str) -> CheckedProgram:
    """Parse and check a program; ProgramError (with every diagnostic) when it has an error."""
    return check_program(parse_program(data, path))
