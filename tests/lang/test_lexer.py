"""Lexical rules (VPL.md §1): every lexical error's message and position, comments, BOM/CR."""

from __future__ import annotations

import pytest

from varpulis_mp.errors import ProgramError
from varpulis_mp.lang import ast
from varpulis_mp.lang.lexer import decode_source, source_lines, tokenize
from varpulis_mp.lang.parser import parse_program


def toks(text: str) -> list[tuple[str, str, int, int]]:
    lines = source_lines(text)
    return [(t.type, t.text, t.line, t.col) for t in tokenize(text, "p.vpl", lines)]


def err(src: str | bytes) -> tuple[int, int, str, int, str | None]:
    with pytest.raises(ProgramError) as info:
        parse_program(src, "p.vpl")
    assert len(info.value.diagnostics) == 1
    d = info.value.diagnostics[0]
    assert d.path == "p.vpl" and d.severity == "error"
    return d.pos.line, d.pos.col, d.message, d.width, d.hint


def const_value(src: str) -> ast.Expr:
    prog = parse_program(src, "p.vpl")
    decl = prog.declarations[-1]
    assert isinstance(decl, ast.ConstDecl)
    return decl.expr


def test_basic_tokens_and_positions() -> None:
    assert toks("let x = 1 + 2.5") == [
        ("NAME", "let", 1, 1), ("NAME", "x", 1, 5), ("EQUAL", "=", 1, 7), ("INT", "1", 1, 9),
        ("PLUS", "+", 1, 11), ("FLOAT", "2.5", 1, 13), ("$END", "", 1, 16),
    ]


def test_reserved_words_are_tokens_but_prefixes_are_names() -> None:
    kinds = [t[0] for t in toks("and or not in is if then else true false null")]
    assert kinds[:-1] == ["AND", "OR", "NOT", "IN", "IS", "IF", "THEN", "ELSE", "TRUE", "FALSE", "NULL"]
    kinds = [t[0] for t in toks("notified null_count true_hits index order_id isbn")]
    assert kinds[:-1] == ["NAME"] * 6


def test_operators_and_unsupported_tokens() -> None:
    kinds = [t[0] for t in toks("== != <= >= < > + - * / % ( ) [ ] , : . = ** -> => .. ?? ?. & | ^ ~ << >> { } @ '")]
    assert kinds[:-1] == [
        "EQEQ", "NE", "LE", "GE", "LT", "GT", "PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "LPAR",
        "RPAR", "LSQB", "RSQB", "COMMA", "COLON", "DOT", "EQUAL", "STARSTAR", "ARROW", "FATARROW",
        "DOTDOT", "QQ", "QDOT", "AMP", "PIPE", "CARET", "TILDE", "SHL", "SHR", "LBRACE", "RBRACE",
        "AT", "SQUOTE",
    ]


def test_durations_and_literals() -> None:
    t = tokenize("1ms 2s 3m 4h 5d 42 1.5e3 \"a\\n\\t\\r\\\"\\\\b\"", "p", ())
    assert [(x.type, x.value) for x in t[:-1]] == [
        ("DURATION", 1), ("DURATION", 2000), ("DURATION", 180_000), ("DURATION", 14_400_000),
        ("DURATION", 432_000_000), ("INT", 42), ("FLOAT", 1500.0), ("STRING", "a\n\t\r\"\\b"),
    ]


def test_int64_bounds() -> None:
    assert const_value("let x = 9223372036854775807") == ast.Literal_(
        ast.SourcePos(1, 9), "int", 2**63 - 1, 19)
    assert err("let x = 9223372036854775808")[:3] == (1, 9, "integer literal out of range")
    assert err("let x = " + "9" * 5000)[:3] == (1, 9, "integer literal out of range")
    assert err("let x = 106751991167301d")[:3] == (1, 9, "integer literal out of range")


@pytest.mark.parametrize("src, col, width", [
    ("let x = 1.", 9, 2), ("let x = .5", 9, 2), ("let x = 1e5", 9, 3), ("let x = 5min", 9, 4),
    ("let x = 10sec", 9, 5), ("let x = 1.5s", 9, 4), ("let x = 1.0e", 9, 4), ("let x = 1.0.2", 9, 4),
])
def test_invalid_number(src: str, col: int, width: int) -> None:
    assert err(src) == (1, col, "invalid number", width, "write 1.0, 0.5, 1.0e5")


def test_float_and_duration_errors() -> None:
    assert err("let x = 1.0e999")[:3] == (1, 9, "float literal out of range")
    assert err("let x = 10ns")[:3] == (1, 9, "durations below one millisecond are not supported")
    assert err("let x = 3us")[:3] == (1, 9, "durations below one millisecond are not supported")


def test_strings() -> None:
    assert err('let x = "abc')[:3] == (1, 9, "unterminated string")
    assert err('let x = "abc\nlet y = 1"')[:3] == (1, 9, "unterminated string")
    assert err('let x = "a\\qb"')[:4] == (1, 11, "invalid escape sequence", 2)
    # the unterminated string is reported at its quote, before the bad escape inside it
    assert err('let x = "a\\qb')[:3] == (1, 9, "unterminated string")
    # comments are not recognised inside strings
    assert const_value('let x = "# // /* */"') == ast.Literal_(ast.SourcePos(1, 9), "string", "# // /* */", 12)


def test_string_length_limit() -> None:
    ok = '"' + "a" * 65536 + '"'
    assert isinstance(const_value("let x = " + ok), ast.Literal_)
    assert err('let x = "' + "a" * 65537 + '"')[:3] == (1, 9, "string literal is longer than 64 KiB")
    # bytes of UTF-8 count, not characters
    assert err('let x = "' + "\u00e9" * 32769 + '"')[:3] == (1, 9, "string literal is longer than 64 KiB")


def test_name_length_limit() -> None:
    assert isinstance(const_value("let x = " + "a" * 255), ast.Name)
    assert err("let x = " + "a" * 256)[:4] == (1, 9, "name is longer than 255 characters", 256)


@pytest.mark.parametrize("src, col", [
    ("let x = a ! b", 11), ("let x = \u00e9t\u00e9", 9), ("let x = a\rb", 10), ("let x = a\fb", 10),
    ("let x = a\u00a0+ b", 10), ("let x = $", 9), ("let x = a ? b", 11), ("let x = a\vb", 10),
])
def test_unexpected_character(src: str, col: int) -> None:
    assert err(src)[:3] == (1, col, "unexpected character")


def test_comments() -> None:
    src = "// a\n# b\n/* c\n d */ let x /* e */ = 1 // f\n# g"
    prog = parse_program(src, "p.vpl")
    (decl,) = prog.declarations
    assert isinstance(decl, ast.ConstDecl) and decl.pos == ast.SourcePos(4, 11)
    assert err("let x = 1\n/* never closed\n*/?")[:2] == (3, 3)
    assert err("let x = 1\n  /* never closed\n")[:4] == (2, 3, "unterminated comment", 2)
    # /* does not nest
    assert err("/* /* */ */")[:3] == (1, 10, "expected a declaration (context, stream, let, const or connector), found '*'")


def test_bom_and_crlf() -> None:
    prog = parse_program(b"\xef\xbb\xbflet x = 1\r\nlet y = 2\r\n", "p.vpl")
    assert prog.lines == ("let x = 1", "let y = 2", "")
    assert [d.pos for d in prog.declarations] == [ast.SourcePos(1, 5), ast.SourcePos(2, 5)]
    assert err(b"\xef\xbb\xbflet x = ?")[:2] == (1, 9)
    # a lone CR is an unexpected character
    assert err(b"let x = 1\rlet y = 2")[:3] == (1, 10, "unexpected character")
    # a BOM later in the file is an unexpected character
    assert err("let x = \ufeff1")[:3] == (1, 9, "unexpected character")


def test_columns_tabs_and_non_bmp() -> None:
    assert err("\tlet\tx = ?")[:2] == (1, 10)
    assert err('let x = "\U0001F600\U0001F600" ?')[:2] == (1, 14)
    line, col, msg, width, _ = err("let x = \U0001F600")
    assert (line, col, msg) == (1, 9, "unexpected character")


def test_invalid_utf8() -> None:
    assert err(b"let x = 1\nlet y = \"ab\xff\"")[:3] == (2, 12, "invalid UTF-8")
    assert err(b"\xef\xbb\xbf\xc3")[:3] == (1, 1, "invalid UTF-8")
    d_line, d_col, msg, _, _ = err(b"let x = \"\xc3\xa9\xe2\x82\"")
    assert (d_line, d_col, msg) == (1, 11, "invalid UTF-8")
    assert err(b"# comment \xfe\nlet x = 1")[:3] == (1, 11, "invalid UTF-8")
    assert err(b"let x = 1 /* a\n b \xfe */")[:3] == (2, 4, "invalid UTF-8")
    assert err(b"let x = 1\n\xfe")[:3] == (2, 1, "invalid UTF-8")
    # the first problem in source order wins
    assert err(b"let x = ) \xff")[:3] == (1, 9, "expected an expression, found ')'")
    assert err(b"let x = \"abc\xff")[:3] == (1, 9, "unterminated string")
    with pytest.raises(ProgramError) as info:
        parse_program(b"let x = 1 \xff\xfe", "p.vpl")
    assert "\ufffd" in info.value.diagnostics[0].source_line
    info.value.diagnostics[0].render().encode("utf-8")


def test_program_size_limit() -> None:
    exactly = b"#" + b"a" * (262_144 - 1)
    assert parse_program(exactly, "p.vpl").declarations == ()
    assert err(exactly + b"b")[:3] == (1, 262_145, "program is larger than 256 KiB")
    # a two-byte character straddling the limit is the one reported
    data = b"#" + b"a" * (262_144 - 2) + "\u00e9".encode() + b"x" * 10
    assert err(data)[:3] == (1, 262_144, "program is larger than 256 KiB")
    # the BOM counts toward the size but not the column
    data = b"\xef\xbb\xbf" + b"#" * 262_144
    assert err(data)[:3] == (1, 262_142, "program is larger than 256 KiB")
    # lines before it, and invalid UTF-8 is never looked at
    data = b"let x = 1\n" + b"\xff" * 300_000
    assert err(data)[:3] == (2, 262_135, "program is larger than 256 KiB")


def test_lexical_error_after_syntax_error_loses() -> None:
    assert err("let x = ) ?")[:3] == (1, 9, "expected an expression, found ')'")
    assert err("let x = 1 ?")[:3] == (1, 11, "unexpected character")
    assert decode_source(b"\xef\xbb\xbfa", "p") == "a"
