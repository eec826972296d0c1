"""The hand-written VPL lexer (VPL.md §1).

`decode_source` turns the raw bytes into text (size limit, UTF-8, byte-order mark) and `tokenize`
turns the text into a list of `Tok`. A lexical error does not raise at once: the list then ends
with an `ERROR` token that carries the diagnostic, so that the parser reports it only when it
reaches it (an earlier syntax error wins, §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from varpulis_mp.errors import Diagnostic, SourcePos

MAX_PROGRAM_BYTES = 262_144
MAX_NAME_CHARS = 255
MAX_STRING_BYTES = 65_536
INT64_MAX = 2**63 - 1

RESERVED = {
    "and": "AND",
    "or": "OR",
    "not": "NOT",
    "in": "IN",
    "is": "IS",
    "if": "IF",
    "then": "THEN",
    "else": "ELSE",
    "true": "TRUE",
    "false": "FALSE",
    "null": "NULL",
}

DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

# Punctuation, longest first. Tokens of §1 that start unsupported features are real token types
# that the grammar never accepts; the parser turns them into `not supported yet` (§14).
PUNCT = {
    "**": "STARSTAR",
    "->": "ARROW",
    "=>": "FATARROW",
    "..": "DOTDOT",
    "??": "QQ",
    "?.": "QDOT",
    "<<": "SHL",
    ">>": "SHR",
    "==": "EQEQ",
    "!=": "NE",
    "<=": "LE",
    ">=": "GE",
    "(": "LPAR",
    ")": "RPAR",
    "[": "LSQB",
    "]": "RSQB",
    ",": "COMMA",
    ":": "COLON",
    ".": "DOT",
    "=": "EQUAL",
    "<": "LT",
    ">": "GT",
    "+": "PLUS",
    "-": "MINUS",
    "*": "STAR",
    "/": "SLASH",
    "%": "PERCENT",
    "&": "AMP",
    "|": "PIPE",
    "^": "CARET",
    "~": "TILDE",
    "{": "LBRACE",
    "}": "RBRACE",
    "@": "AT",
    "'": "SQUOTE",
}

UNSUPPORTED_TOKENS = {
    "STARSTAR": "the '**' operator is not supported yet",
    "ARROW": "sequences ('->') are not supported yet",
    "FATARROW": "lambdas ('=>') are not supported yet",
    "DOTDOT": "ranges ('..') are not supported yet",
    "QQ": "the '??' operator is not supported yet",
    "QDOT": "optional chaining ('?.') is not supported yet",
    "SHL": "bitwise operators are not supported yet",
    "SHR": "bitwise operators are not supported yet",
    "AMP": "bitwise operators are not supported yet",
    "PIPE": "bitwise operators are not supported yet",
    "CARET": "bitwise operators are not supported yet",
    "TILDE": "bitwise operators are not supported yet",
    "LBRACE": "map literals ('{...}') are not supported yet",
    "RBRACE": "map literals ('{...}') are not supported yet",
    "AT": "timestamp literals ('@...') are not supported yet",
    "SQUOTE": "single-quoted strings are not supported yet",
}

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}

_WS = re.compile(r"[ \t]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?)?")
_WORDTAIL = re.compile(r"[A-Za-z0-9_]*")
_LINE_REST = re.compile(r"[^\n]*")
_STRING_BODY = re.compile(r'[^"\\\n]*')
_PUNCT_RE = re.compile("|".join(re.escape(p) for p in sorted(PUNCT, key=len, reverse=True)))

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DIGITS = frozenset("0123456789")

INVALID_NUMBER_HINT = "write 1.0, 0.5, 1.0e5"


@dataclass(slots=True)
class Tok:
    """One token: its type (a grammar terminal name), text, value and position."""

    type: str
    text: str
    line: int
    col: int
    width: int
    value: object = None
    error: Diagnostic | None = None

    @property
    def pos(self) -> SourcePos:
        return SourcePos(self.line, self.col)


class SourceError(Exception):
    """Raised by `decode_source` (size, UTF-8): carries one diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _locate_bytes(data: bytes, offset: int, path: str, message: str) -> Diagnostic:
    """A diagnostic at byte `offset` of raw (possibly invalid) data."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    if line == 1:
        start = max(start, bom)
    start = min(start, offset)
    col = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    end = data.find(b"\n", offset)
    if end < 0:
        end = len(data)
    text = data[start:end].decode("utf-8", errors="replace")
    if text.endswith("\r"):
        text = text[:-1]
    return Diagnostic(path, SourcePos(line, col), "error", message, text, 1)


def decode_source(data: bytes | str, path: str) -> str:
    """The program text (byte-order mark removed), or SourceError for size / UTF-8 problems."""
    if isinstance(data, str):
        raw = data.encode("utf-8", errors="surrogatepass")
    else:
        raw = bytes(data)
    if len(raw) > MAX_PROGRAM_BYTES:
        off = MAX_PROGRAM_BYTES
        # Back up to the first byte of the character holding byte 262,144.
        while off > 0 and off > MAX_PROGRAM_BYTES - 3 and (raw[off] & 0xC0) == 0x80:
            off -= 1
        raise SourceError(_locate_bytes(raw, off, path, "program is larger than 256 KiB"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Keep going: the invalid bytes become lone surrogates (U+DC80..U+DCFF), which no valid
        # decoding produces; the lexer reports the first one as `invalid UTF-8` when it reaches
        # it, so that an earlier lexical or syntax error wins (§1).
        text = raw.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


_BAD_BYTE = re.compile("[\udc80-\udcff]")


def first_invalid(text: str) -> int:
    """Index of the first character that stands for an invalid byte, or -1."""
    m = _BAD_BYTE.search(text)
    return m.start() if m else -1


def source_lines(text: str) -> tuple[str, ...]:
    """The lines diagnostics quote: split at LF, a CR just before the LF dropped."""
    if first_invalid(text) >= 0:
        text = _BAD_BYTE.sub("\ufffd", text)
    lines = text.split("\n")
    return tuple(line[:-1] if line.endswith("\r") else line for line in lines)


def tokenize(text: str, path: str, lines: tuple[str, ...]) -> list[Tok]:
    """Every token of `text`, ending with `$END` or, on a lexical error, an `ERROR` token."""
    toks: list[Tok] = []
    append = toks.append
    n = len(text)
    pos = 0
    line = 1
    line_start = 0

    def error(at: int, message: str, width: int = 1, hint: str | None = None) -> Tok:
        col = at - line_start + 1
        src = lines[line - 1] if line - 1 < len(lines) else ""
        diag = Diagnostic(path, SourcePos(line, col), "error", message, src, max(1, width), hint)
        return Tok("ERROR", "", line, col, max(1, width), None, diag)

    bad = first_invalid(text)
    if bad < 0:
        bad = n + 1

    def invalid_utf8() -> Tok:
        nonlocal line, line_start
        line = text.count("\n", 0, bad) + 1
        line_start = text.rfind("\n", 0, bad) + 1
        return error(bad, "invalid UTF-8")

    ws_match = _WS.match
    name_match = _NAME.match
    number_match = _NUMBER.match
    punct_match = _PUNCT_RE.match

    while pos < n:
        if pos >= bad:  # at, or just skipped over (string, comment), an invalid byte
            append(invalid_utf8())
            return toks
        ch = text[pos]
        if ch == " " or ch == "\t":
            pos = ws_match(text, pos).end()  # type: ignore[union-attr]
            continue
        if ch == "\n":
            pos += 1
            line += 1
            line_start = pos
            continue
        if ch == "\r" and pos + 1 < n and text[pos + 1] == "\n":
            pos += 1
            continue
        if ch in _NAME_START:
            m = name_match(text, pos)
            assert m is not None
            word = m.group()
            end = m.end()
            if len(word) > MAX_NAME_CHARS:
                append(error(pos, "name is longer than 255 characters", len(word)))
                return toks
            append(Tok(RESERVED.get(word, "NAME"), word, line, pos - line_start + 1, end - pos))
            pos = end
            continue
        if ch in _DIGITS:
            tok = _lex_number(text, pos, line, line_start, error)
            append(tok)
            if tok.type == "ERROR":
                return toks
            pos += len(tok.text)
            continue
        if ch == '"':
            tok, newpos = _lex_string(text, pos, line, line_start, error)
            if tok.type != "ERROR" and newpos > bad:
                append(tok)
                append(invalid_utf8())
                return toks
            append(tok)
            if tok.type == "ERROR":
                return toks
            pos = newpos
            continue
        if ch == "#" or (ch == "/" and text.startswith("//", pos)):
            pos = _LINE_REST.match(text, pos).end()  # type: ignore[union-attr]
            continue
        if ch == "/" and text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                append(error(pos, "unterminated comment", 2))
                return toks
            body_lines = text.count("\n", pos, end)
            if body_lines:
                line += body_lines
                line_start = text.rfind("\n", pos, end) + 1
            pos = end + 2
            continue
        if ch == "." and pos + 1 < n and text[pos + 1] in _DIGITS:
            m = number_match(text, pos + 1)
            assert m is not None
            tail = _WORDTAIL.match(text, m.end())
            end = tail.end() if tail else m.end()
            append(error(pos, "invalid number", end - pos, INVALID_NUMBER_HINT))
            return toks
        m = punct_match(text, pos)
        if m is not None:
            p = m.group()
            append(Tok(PUNCT[p], p, line, pos - line_start + 1, len(p)))
            pos = m.end()
            continue
        append(error(pos, "unexpected character"))
        return toks
    if pos > bad:
        append(invalid_utf8())
        return toks
    col = pos - line_start + 1
    append(Tok("$END", "", line, col, 1))
    return toks


def _lex_number(text: str, pos: int, line: int, line_start: int, error) -> Tok:  # type: ignore[no-untyped-def]
    m = _NUMBER.match(text, pos)
    assert m is not None
    num = m.group()
    end = m.end()
    col = pos - line_start + 1
    n = len(text)
    is_float = "." in num
    tail_m = _WORDTAIL.match(text, end)
    tail = tail_m.group() if tail_m else ""
    if not is_float and end < n and text[end] == "." and not text.startswith("..", end):
        # `1.`, `1.x`: a dot not followed by digits.
        tail2 = _WORDTAIL.match(text, end + 1)
        stop = tail2.end() if tail2 else end + 1
        return error(pos, "invalid number", stop - pos, INVALID_NUMBER_HINT)  # type: ignore[no-any-return]
    if is_float:
        if tail:
            return error(pos, "invalid number", end + len(tail) - pos, INVALID_NUMBER_HINT)  # type: ignore[no-any-return]
        if end < n and text[end] == "." and not text.startswith("..", end):
            return error(pos, "invalid number", end + 1 - pos, INVALID_NUMBER_HINT)  # type: ignore[no-any-return]
        value = float(num)
        if value == float("inf"):
            return error(pos, "float literal out of range", len(num))  # type: ignore[no-any-return]
        return Tok("FLOAT", num, line, col, len(num), value)
    digits = num.lstrip("0")
    if len(digits) > 19 or (digits and int(digits) > INT64_MAX):
        ivalue = None
    else:
        ivalue = int(num)
    if tail:
        whole = num + tail
        if tail in DURATION_UNITS:
            if ivalue is None or ivalue * DURATION_UNITS[tail] > INT64_MAX:
                return error(pos, "integer literal out of range", len(whole))  # type: ignore[no-any-return]
            return Tok("DURATION", whole, line, col, len(whole), ivalue * DURATION_UNITS[tail])
        if tail in ("ns", "us"):
            return error(pos, "durations below one millisecond are not supported", len(whole))  # type: ignore[no-any-return]
        return error(pos, "invalid number", len(whole), INVALID_NUMBER_HINT)  # type: ignore[no-any-return]
    if ivalue is None:
        return error(pos, "integer literal out of range", len(num))  # type: ignore[no-any-return]
    return Tok("INT", num, line, col, len(num), ivalue)


def _lex_string(text: str, pos: int, line: int, line_start: int, error) -> tuple[Tok, int]:  # type: ignore[no-untyped-def]
    n = len(text)
    i = pos + 1
    body = _STRING_BODY.match
    bad_escape = -1
    while True:
        i = body(text, i).end()  # type: ignore[union-attr]
        if i >= n or text[i] == "\n":
            return error(pos, "unterminated string", 1), i
        c = text[i]
        if c == '"':
            break
        # a backslash
        if i + 1 >= n or text[i + 1] == "\n":
            return error(pos, "unterminated string", 1), i
        if text[i + 1] not in _ESCAPES and bad_escape < 0:
            bad_escape = i
        i += 2
    raw = text[pos + 1 : i]
    end = i + 1
    if len(raw) > MAX_STRING_BYTES // 4 and len(raw.encode("utf-8", errors="surrogatepass")) > MAX_STRING_BYTES:
        return error(pos, "string literal is longer than 64 KiB", 1), end
    if bad_escape >= 0:
        return error(bad_escape, "invalid escape sequence", 2), end
    if "\\" in raw:
        value = re.sub(r"\\(.)", lambda mm: _ESCAPES[mm.group(1)], raw)
    else:
        value = raw
    col = pos - line_start + 1
    return Tok("STRING", text[pos:end], line, col, end - pos, value), end
