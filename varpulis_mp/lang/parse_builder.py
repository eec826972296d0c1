"""The AST-building callbacks of the parser (VPL.md §2): one method per grammar rule or alias of
`vpl.lark`, called by the parser's driver on each reduction with the rule's children (tokens and
already-built nodes) and returning the node for that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.lexer import Tok


def _first_pos(expr: ast.Expr) -> SourcePos:
    """Position of an expression's first token (binary nodes sit at their operator)."""
    while True:
        if isinstance(expr, ast.Binary):
            expr = expr.left
        elif isinstance(expr, ast.IsNull):
            expr = expr.operand
        else:
            return expr.pos


def _p(tok: Tok) -> SourcePos:
    return SourcePos(tok.line, tok.col)


def _literal(kind: ast.LiteralKind) -> Callable[[Any, list[Any]], ast.Literal_]:
    """The callback of a literal rule whose token already carries the literal's value."""

    def build(self: Any, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), kind, t.value, t.width)

    return build


class _Builder:
    """One method per grammar rule (or alias); each gets the rule's children, returns a node."""

    # lists
    def decls_empty(self, c: list[Any]) -> list[Any]:
        return []

    def decls_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[1])
        return c[0]  # type: ignore[no-any-return]

    def list_one(self, c: list[Any]) -> list[Any]:
        return [c[0]]

    def list_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[2])
        return c[0]  # type: ignore[no-any-return]

    def trailing(self, c: list[Any]) -> Any:
        return c[0]

    ctx_opts_trailing = trailing

    def empty_list(self, c: list[Any]) -> list[Any]:
        return []

    def ops_empty(self, c: list[Any]) -> list[Any]:
        return []

    def ops_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[2])
        return c[0]  # type: ignore[no-any-return]

    def start(self, c: list[Any]) -> Any:
        return c[0]

    # declarations
    def context_plain(self, c: list[Any]) -> ast.ContextDecl:
        return ast.ContextDecl(_p(c[1]), c[1].text, (), _p(c[0]))

    def context_opts(self, c: list[Any]) -> ast.ContextDecl:
        return ast.ContextDecl(_p(c[1]), c[1].text, tuple(c[3]), _p(c[0]))

    def ctx_opt(self, c: list[Any]) -> ast.ContextOption:
        return ast.ContextOption(_p(c[0]), c[0].text, c[2])

    def const_decl(self, c: list[Any]) -> ast.ConstDecl:
        kw = c[0]
        return ast.ConstDecl(_p(c[1]), c[1].text, c[3], kw.text, _p(kw))

    def stream_decl(self, c: list[Any]) -> ast.StreamDecl:
        ops: list[Any] = c[4]
        # The driver only lets `.from` through right after the source name: at most ops[0].
        subscription = ops.pop(0) if ops and isinstance(ops[0], ast.FromOp) else None
        return ast.StreamDecl(_p(c[1]), c[1].text, c[3].text, _p(c[3]), tuple(ops), _p(c[0]), subscription)

    def connector_decl(self, c: list[Any]) -> ast.ConnectorDecl:
        return ast.ConnectorDecl(_p(c[1]), c[1].text, c[3].text, _p(c[3]), tuple(c[5]), _p(c[0]))

    def param(self, c: list[Any]) -> ast.Param:
        return ast.Param(_p(c[0]), c[0].text, c[2])

    def conn_args_plain(self, c: list[Any]) -> tuple[Tok, list[ast.Param]]:
        return c[0], []

    def conn_args_params(self, c: list[Any]) -> tuple[Tok, list[ast.Param]]:
        return c[0], c[2]

    # operations
    def op_context(self, c: list[Any]) -> ast.ContextOp:
        return ast.ContextOp(_p(c[0]), c[2].text, _p(c[2]))

    def op_where(self, c: list[Any]) -> ast.Where:
        return ast.Where(_p(c[0]), c[2])

    def op_having(self, c: list[Any]) -> ast.Having:
        return ast.Having(_p(c[0]), c[2])

    def op_select(self, c: list[Any]) -> ast.Select:
        return ast.Select(_p(c[0]), tuple(c[2]))

    def op_emit(self, c: list[Any]) -> ast.Emit:
        return ast.Emit(_p(c[0]), tuple(c[2]))

    def op_partition_by(self, c: list[Any]) -> ast.PartitionBy:
        return ast.PartitionBy(_p(c[0]), tuple(c[2]))

    def op_window(self, c: list[Any]) -> ast.Window:
        return ast.Window(_p(c[0]), tuple(c[2]), _p(c[1]))

    def op_aggregate(self, c: list[Any]) -> ast.Aggregate:
        return ast.Aggregate(_p(c[0]), tuple(c[2]))

    def op_from(self, c: list[Any]) -> ast.FromOp:
        connector, params = c[2]
        return ast.FromOp(_p(c[0]), connector.text, _p(connector), tuple(params))

    def op_to(self, c: list[Any]) -> ast.ToOp:
        connector, params = c[2]
        return ast.ToOp(_p(c[0]), connector.text, _p(connector), tuple(params))

    def select_bare(self, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(_p(c[0]), c[0].text, None)

    def select_named(self, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(_p(c[0]), c[0].text, c[2])

    def emit_item(self, c: list[Any]) -> ast.EmitItem:
        return ast.EmitItem(_p(c[0]), c[0].text, c[2])

    def agg_item(self, c: list[Any]) -> ast.AggItem:
        return ast.AggItem(_p(c[0]), c[0].text, c[2])

    def warg_expr(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_first_pos(c[0]), c[0])

    def warg_tumbling(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_p(c[0]), c[1], tumbling=True)

    def warg_option(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_p(c[0]), c[2], option=c[0].text, option_pos=_p(c[0]))

    # expressions
    def expr(self, c: list[Any]) -> Any:
        return c[0]

    def pass_(self, c: list[Any]) -> Any:
        return c[0]

    def cmp_op(self, c: list[Any]) -> Any:
        return c[0]

    def binary(self, c: list[Any]) -> ast.Binary:
        op = c[1]
        return ast.Binary(_p(op), op.text, c[0], c[2])

    compare = binary

    def not_in(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(_p(c[1]), "not in", c[0], c[3])

    def is_null(self, c: list[Any]) -> ast.IsNull:
        return ast.IsNull(_p(c[1]), c[0], False)

    def is_not_null(self, c: list[Any]) -> ast.IsNull:
        return ast.IsNull(_p(c[1]), c[0], True)

    def unary(self, c: list[Any]) -> ast.Unary:
        return ast.Unary(_p(c[0]), c[0].text, c[1])

    lit_int = _literal("int")
    lit_float = _literal("float")
    lit_string = _literal("string")
    lit_duration = _literal("duration")

    def lit_bool(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "bool", t.type == "TRUE", t.width)

    def lit_null(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "null", None, t.width)

    def name(self, c: list[Any]) -> ast.Name:
        t = c[0]
        return ast.Name(_p(t), t.text)

    def call(self, c: list[Any]) -> ast.Call:
        return ast.Call(_p(c[0]), c[0].text, tuple(c[2]), _p(c[1]))

    def list_expr(self, c: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(_p(c[0]), tuple(c[1]))

    def paren(self, c: list[Any]) -> ast.Paren:
        return ast.Paren(_p(c[0]), c[1])

    def if_expr(self, c: list[Any]) -> ast.IfExpr:
        return ast.IfExpr(_p(c[0]), c[1], c[3], c[5])


def _single(c: list[Any]) -> Any:
    return c[0] if len(c) == 1 else c
