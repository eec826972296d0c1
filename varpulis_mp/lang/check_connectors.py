"""Connector declarations and the `.from`/`.to` of streams (RUN.md §1.1).

Owns the connector rules of `check`: a connector's name is not used by any other declaration, its
parameters follow the table of its kind (`connector_kinds`), a `.from` reads an event type through
a connector that can be read, every `.from`/`.to` names a declared connector with parameters of
its kind, and a password written in the program gets a warning. What passes becomes plain data
(`ConnectorInfo`, `Endpoint`): every parameter resolved, defaults applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_report import Reporter
from varpulis_mp.lang.checked import ConnectorInfo, Duration, Endpoint, Value
from varpulis_mp.lang.connector_kinds import KINDS, FromConnector, KindSpec, ParamSpec, StreamOutputTopic
from varpulis_mp.lang.constants import ConstantTable

PASSWORD_MESSAGE = "password written in the program: prefer password_env"
PASSWORD_HINT = 'password_env: "MQTT_PASSWORD" reads it from that environment variable at start'

_ARTICLES = {"Int": "an Int", "Float": "a Float", "String": "a String", "Bool": "a Bool",
             "Duration": "a Duration", "List": "a List", "Null": "null"}


@dataclass(frozen=True)
class _Where:
    """What a parameter list belongs to, for messages: `mqtt(...)`, `.from(Broker, ...)`."""

    label: str
    anchor: SourcePos  # where a missing parameter is reported
    anchor_width: int


class ConnectorChecker:
    """Checks the connector declarations once, then each stream's `.from` and `.to`."""

    def __init__(self, constants: ConstantTable, rep: Reporter) -> None:
        self.constants = constants
        self.rep = rep
        self.kinds: dict[str, KindSpec] = {}  # every connector name declared (first declaration)
        self.infos: dict[str, ConnectorInfo] = {}

    # ------------------------------------------------------------ declarations

    def declare(self, decls: Sequence[ast.ConnectorDecl], other_names: Mapping[str, str]) -> None:
        """Check every declaration; `other_names` maps each stream, context and constant name to
        what it is (`the stream declared at line 4`)."""
        for decl in decls:
            used = other_names.get(decl.name)
            twice = decl.name in self.infos
            if twice:
                used = f"the connector declared at line {self.infos[decl.name].pos.line}"
            if used is not None:
                self.rep.error(decl.pos, f"name '{decl.name}' is already used", len(decl.name), f"'{decl.name}' is {used}")
            kind = KINDS[decl.kind]  # the parser rejects every other kind (VPL.md §14)
            where = _Where(f"{kind.name}(...)", decl.kind_pos, len(decl.kind))
            params = self._resolve(decl.params, kind.params, where, {}, "")
            if any(spec.name == "password" for spec in kind.params):
                self._password_rules(decl.params)
            if not twice:  # streams still find a connector whose name clashes: one error, not two
                self.kinds[decl.name] = kind
                self.infos[decl.name] = ConnectorInfo(decl.name, kind.name, params, decl.pos)

    def _password_rules(self, params: tuple[ast.Param, ...]) -> None:
        names = [p.name for p in params]
        for p in params:
            if p.name == "password":
                self.rep.warning(p.pos, PASSWORD_MESSAGE, len(p.name), PASSWORD_HINT)
        if "password" in names and "password_env" in names:
            second = max((p for p in params if p.name in ("password", "password_env")), key=lambda p: p.pos)
            self.rep.error(second.pos, "give password or password_env, not both", len(second.name))

    # ------------------------------------------------------------ streams

    def subscription(self, decl: ast.StreamDecl, source_is_stream: bool) -> Endpoint | None:
        op = decl.subscription
        if op is None:
            return None
        if source_is_stream:
            self.rep.error(op.pos, ".from needs an event type", len("from"),
                           f"'{decl.source}' is a stream; .from(CONNECTOR, ...) reads events of a type")
        kind = self._connector(op)
        if kind is None:
            return None
        if kind.from_params is None:
            readable = [k.name for k in KINDS.values() if k.from_params is not None]
            self.rep.error(op.connector_pos, f".from cannot read the {kind.name} connector '{op.connector}'",
                           len(op.connector), f"{kind.name} connectors only take records (.to); .from reads "
                           f"{', '.join(readable[:-1])} and {readable[-1]} connectors")
            return None
        return self._endpoint(op, "from", kind.from_params, decl.name)

    def sinks(self, decl: ast.StreamDecl) -> tuple[Endpoint, ...]:
        found: list[Endpoint] = []
        for op in decl.ops:
            if isinstance(op, ast.ToOp):
                kind = self._connector(op)
                if kind is not None:
                    found.append(self._endpoint(op, "to", kind.to_params, decl.name))
        return tuple(found)

    def _connector(self, op: ast.ConnectorUse) -> KindSpec | None:
        kind = self.kinds.get(op.connector)
        if kind is None:
            declared = list(self.kinds)
            hint = "declared connectors are " + ", ".join(declared) if declared else "no connectors are declared"
            self.rep.error(op.connector_pos, f"unknown connector '{op.connector}'", len(op.connector), hint)
        return kind

    def _endpoint(self, op: ast.ConnectorUse, verb: str, specs: tuple[ParamSpec, ...], stream: str) -> Endpoint:
        where = _Where(f".{verb}({op.connector}, ...)", op.connector_pos, len(op.connector))
        connector = self.infos[op.connector].params
        return Endpoint(op.connector, self._resolve(op.params, specs, where, connector, stream))

    # ------------------------------------------------------------ parameters

    def _resolve(self, params: tuple[ast.Param, ...], specs: tuple[ParamSpec, ...], where: _Where,
                 connector: Mapping[str, object], stream: str) -> dict[str, object]:
        """Every parameter of `specs`: the written value (checked), else its default."""
        by_name = {s.name: s for s in specs}
        given: dict[str, object] = {}
        for param in params:
            spec = by_name.get(param.name)
            if spec is None:
                takes = "takes " + ", ".join(by_name) if by_name else "takes no parameters"
                self.rep.error(param.pos, f"unknown parameter '{param.name}'", len(param.name), f"{where.label} {takes}")
            elif param.name in given:
                self.rep.error(param.pos, f"parameter '{param.name}' is given twice", len(param.name))
            else:
                given[param.name] = self._value(param, spec)
        resolved: dict[str, object] = {}
        for spec in specs:
            if spec.name in given:
                resolved[spec.name] = given[spec.name]
            elif spec.required:
                self.rep.error(where.anchor, f"missing parameter '{spec.name}'", where.anchor_width,
                               f"{where.label} needs {spec.name}")
            else:
                resolved[spec.name] = _default(spec, connector, stream)
        return resolved

    def _value(self, param: ast.Param, spec: ParamSpec) -> object:
        """The parameter's value when it is right (None after reporting what is wrong)."""
        found = self._literal_or_constant(param.value)
        if found is None:
            return None
        type_name, value = found
        pos, width = param.value.pos, _width(param.value)
        if type_name != spec.type:
            hint = "write a duration such as 30s" if spec.type == "Duration" else None
            self.rep.error(pos, f"parameter '{spec.name}' must be {_ARTICLES[spec.type]}, not {_ARTICLES[type_name]}",
                           width, hint)
            return None
        problem = spec.rule(value) if spec.rule is not None else None
        if problem is not None:
            self.rep.error(pos, problem[0], width, problem[1])
            return None
        return value

    def _literal_or_constant(self, value: ast.Literal_ | ast.Name) -> tuple[str, object] | None:
        if isinstance(value, ast.Literal_):
            return _type_of(value.value if value.kind != "duration" else Duration(int(value.value)))
        constants = self.constants
        if value.name in constants.values:
            return _type_of(constants.values[value.name])
        if value.name not in constants.declared:  # a constant with an error was reported already
            declared = ", ".join(constants.declared)
            known = f"declared constants are {declared}" if declared else "no constants are declared"
            self.rep.error(value.pos, f"unknown constant '{value.name}'", len(value.name),
                           f'write "{value.name}" for a string; {known}')
        return None


def _type_of(value: Value) -> tuple[str, object]:
    """VPL's name for a value's type, and the value as a connector reads it (Durations in ms)."""
    if isinstance(value, Duration):
        return "Duration", value.ms
    if value is None:
        return "Null", None
    if isinstance(value, bool):
        return "Bool", value
    if isinstance(value, int):
        return "Int", value
    if isinstance(value, float):
        return "Float", value
    if isinstance(value, str):
        return "String", value
    return "List", value


def _default(spec: ParamSpec, connector: Mapping[str, object], stream: str) -> object:
    if isinstance(spec.default, FromConnector):
        return connector.get(spec.default.param)
    if isinstance(spec.default, StreamOutputTopic):
        return f"{stream}-output"
    return spec.default


def _width(value: ast.Literal_ | ast.Name) -> int:
    return value.width if isinstance(value, ast.Literal_) else len(value.name)
