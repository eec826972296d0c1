"""Connectors in the language (RUN.md §1.1): `connector` declarations, `.from` and `.to`, their
parse, every `check` rule with its message, position and hint, and the resolved plain data."""

from __future__ import annotations

import pytest

from tests.lang.test_checker import check, diagnostics, only, src
from varpulis_mp.lang import ast
from varpulis_mp.lang.checked import ConnectorInfo, Endpoint
from varpulis_mp.lang.parser import parse_program

BROKER = 'connector Broker = mqtt(host: "localhost")\n'
QOS_HINT = "0: at most once, 1: at least once (QoS 2 is not supported)"
TO_HINT = "move .to(...) after the other operations; only .context may follow it"
PUBLISH_HINT = "wildcards subscribe to many topics; a record is published to one"


def error_is(text: str, where: str, message: str, hint: str | None) -> None:
    """The program's only diagnostic is the error `message` at `where` (line:col) with `hint`."""
    d = only(text)
    assert (f"{d.pos.line}:{d.pos.col}", d.severity, d.message, d.hint) == (where, "error", message, hint)


# ---------------------------------------------------------------- parsing


def test_connector_declaration_and_stream_uses_parse() -> None:
    program = parse_program(src("""
        connector Broker = mqtt(host: "localhost", port: 1883, keepalive: 30s, )
        stream S = T.from(Broker, topic: "a/+", qos: LEVEL)
            .where(x > 1)
            .to(Broker, topic: "out")
            .context(c)
            .to(Broker,)
        """), "p.vpl")
    decl, stream = program.declarations
    assert isinstance(decl, ast.ConnectorDecl)
    assert (decl.name, decl.kind, decl.pos, decl.kind_pos) == ("Broker", "mqtt", ast.SourcePos(1, 11), ast.SourcePos(1, 20))
    assert [(p.name, p.value) for p in decl.params] == [
        ("host", ast.Literal_(ast.SourcePos(1, 31), "string", "localhost", 11)),
        ("port", ast.Literal_(ast.SourcePos(1, 50), "int", 1883, 4)),
        ("keepalive", ast.Literal_(ast.SourcePos(1, 67), "duration", 30_000, 3)),
    ]
    assert isinstance(stream, ast.StreamDecl)
    sub = stream.subscription
    assert isinstance(sub, ast.FromOp)
    assert (sub.pos, sub.connector, sub.connector_pos) == (ast.SourcePos(2, 14), "Broker", ast.SourcePos(2, 19))
    assert [(p.name, p.value) for p in sub.params] == [
        ("topic", ast.Literal_(ast.SourcePos(2, 34), "string", "a/+", 5)),
        ("qos", ast.Name(ast.SourcePos(2, 46), "LEVEL")),
    ]
    assert [type(op).__name__ for op in stream.ops] == ["Where", "ToOp", "ContextOp", "ToOp"]
    to = stream.ops[1]
    assert isinstance(to, ast.ToOp) and to.pos == ast.SourcePos(4, 6) and to.params[0].name == "topic"
    assert stream.ops[3] == ast.ToOp(ast.SourcePos(6, 6), "Broker", ast.SourcePos(6, 9), ())
    assert ast.from_data(ast.to_data(program.declarations)) == program.declarations


def test_from_to_and_connector_stay_names_elsewhere() -> None:
    program = check("""
        context c
        stream S = T.context(c).where(to > from and connector > 0).emit(to: to, from: from, connector: 1)
        stream connector = S.select(to, from)
        """)
    assert [s.name for s in program.streams] == ["S", "connector"]
    assert program.connectors == ()


def test_a_program_without_connectors_is_unchanged() -> None:
    program = check("stream S = T.where(x > 1)\n")
    (stream,) = program.streams
    assert (stream.subscription, stream.sinks, program.connectors) == (None, (), ())


@pytest.mark.parametrize(("text", "where", "message", "hint"), [
    ("connector K = kafka(brokers: \"x\")", "1:15", "connector kind 'kafka' is not supported yet",
     "supported kinds are mqtt, nats, file, http"),
    ("connector K = MQTT(host: \"x\")", "1:15", "connector kind 'MQTT' is not supported yet",
     "supported kinds are mqtt, nats, file, http"),
    ("stream S = T.where(x).from(B, topic: \"x\")", "1:23", ".from is not supported yet",
     ".from(CONNECTOR, ...) may only follow the source name of a stream directly"),
    ("stream S = T.from(B).from(B)", "1:22", ".from is not supported yet",
     ".from(CONNECTOR, ...) may only follow the source name of a stream directly"),
    ("connector B = mqtt(host: null)", "1:26", "expected a literal or the name of a constant, found 'null'", None),
    ("connector B = mqtt(port: -1)", "1:26", "expected a literal or the name of a constant, found '-'", None),
    ("stream S = T.to(B, topic: \"a\" + \"b\")", "1:31", "expected ')' or ',', found '+'", None),
    ("stream S = T.to()", "1:17", "expected a name, found ')'", None),
    ("connector = mqtt()", "1:11", "expected a name, found '='", None),
    ("foo", "1:1", "expected a declaration (context, stream, let, const or connector), found 'foo'", None),
])
def test_errors_that_stop_the_check(text: str, where: str, message: str, hint: str | None) -> None:
    error_is(text, where, message, hint)


def test_unsupported_kind_wins_over_later_errors_only() -> None:
    assert only('connector K = kafka()\nstream S = T.where(x) )').message.startswith("connector kind 'kafka'")
    assert only('stream S = T.where(x) )\nconnector K = kafka()').message.startswith("expected")


# ---------------------------------------------------------------- check rules


CASES = [
    # names (RUN.md §1.1)
    ("stream B = T\nconnector B = mqtt(host: \"h\")", "2:11", "name 'B' is already used",
     "'B' is the stream declared at line 1"),
    ("connector B = mqtt(host: \"h\")\ncontext B\nstream S = T.context(B)", "1:11", "name 'B' is already used",
     "'B' is the context declared at line 2"),
    ("const B = 1\nconnector B = mqtt(host: \"h\")", "2:11", "name 'B' is already used",
     "'B' is the constant declared at line 1"),
    ("connector B = mqtt(host: \"h\")\nconnector B = file(path: \"x\")", "2:11", "name 'B' is already used",
     "'B' is the connector declared at line 1"),
    # placement
    (BROKER + "stream A = T\nstream S = A.from(Broker, topic: \"x\")", "3:14", ".from needs an event type",
     "'A' is a stream; .from(CONNECTOR, ...) reads events of a type"),
    (BROKER + "stream S = T.to(Broker).where(x > 1)", "2:14", ".to must come after every other operation", TO_HINT),
    (BROKER + "stream S = T.to(Broker).emit(a: 1)", "2:14", ".to must come after every other operation", TO_HINT),
    # kinds and parameters
    ("connector B = mqtt(host: \"h\", hots: \"x\")", "1:31", "unknown parameter 'hots'",
     "mqtt(...) takes host, port, client_id, qos, username, password, password_env, keepalive"),
    ("connector B = mqtt(port: 1883)", "1:15", "missing parameter 'host'", "mqtt(...) needs host"),
    ("connector B = mqtt(host: \"h\", port: 1, port: 2)", "1:40", "parameter 'port' is given twice", None),
    ("connector B = mqtt(host: \"h\", port: \"1883\")", "1:37", "parameter 'port' must be an Int, not a String", None),
    ("connector B = mqtt(host: \"h\", port: 1883.0)", "1:37", "parameter 'port' must be an Int, not a Float", None),
    ("connector B = mqtt(host: \"h\", port: true)", "1:37", "parameter 'port' must be an Int, not a Bool", None),
    ("connector B = mqtt(host: \"h\", port: 10s)", "1:37", "parameter 'port' must be an Int, not a Duration", None),
    ("connector B = mqtt(host: \"h\", keepalive: 60)", "1:42", "parameter 'keepalive' must be a Duration, not an Int",
     "write a duration such as 30s"),
    ("connector B = file(path: \"x\", follow: \"yes\")", "1:39", "parameter 'follow' must be a Bool, not a String",
     None),
    ("const P = \"1883\"\nconnector B = mqtt(host: \"h\", port: P)", "2:37",
     "parameter 'port' must be an Int, not a String", None),
    ("const L = [1]\nconnector B = mqtt(host: L)", "2:26", "parameter 'host' must be a String, not a List", None),
    ("connector B = mqtt(host: localhost)", "1:26", "unknown constant 'localhost'",
     'write "localhost" for a string; no constants are declared'),
    ("const H = \"h\"\nconnector B = mqtt(host: hots)", "2:26", "unknown constant 'hots'",
     'write "hots" for a string; declared constants are H'),
    ("connector B = mqtt(host: \"h\", qos: 2)", "1:36", "qos must be 0 or 1", QOS_HINT),
    (BROKER + "stream S = T.from(Broker, topic: \"x\", qos: 2)", "2:44", "qos must be 0 or 1", QOS_HINT),
    (BROKER + "stream S = T.to(Broker, qos: 5)", "2:30", "qos must be 0 or 1", QOS_HINT),
    ("connector B = mqtt(host: \"h\", port: 0)", "1:37", "port must be between 1 and 65535", None),
    ("connector B = mqtt(host: \"\")", "1:26", "host must not be empty", None),
    ("connector B = mqtt(host: \"h\", keepalive: 1500ms)", "1:42",
     "keepalive must be a whole number of seconds from 0s to 65535s", "0s turns keep-alive off"),
    ("connector B = http(url: \"ftp://x\")", "1:25", "url must be an http:// or https:// URL", None),
    ("connector B = http(url: \"http://x\", method: \"GET\")", "1:45", "method must be POST, PUT or PATCH", None),
    ("connector B = http(url: \"http://x\", timeout: 0s)", "1:46", "timeout must be positive", None),
    ("connector B = nats(servers: \"nats://a:4222,\")", "1:29", "servers must be comma-separated URLs",
     'for example "nats://127.0.0.1:4222"'),
    ("connector B = nats(queue_group: \"g\")", "1:15", "missing parameter 'servers'", "nats(...) needs servers"),
    ("connector B = file()", "1:15", "missing parameter 'path'", "file(...) needs path"),
    ("connector B = http()", "1:15", "missing parameter 'url'", "http(...) needs url"),
    ("connector B = mqtt(host: \"h\", password_env: \"P\", password_env: \"Q\")", "1:50",
     "parameter 'password_env' is given twice", None),
    # `.from` and `.to` parameters
    (BROKER + "stream S = T.from(Broker)", "2:19", "missing parameter 'topic'", ".from(Broker, ...) needs topic"),
    (BROKER + "stream S = T.from(Broker, topic: \"a\", retain: true)", "2:39", "unknown parameter 'retain'",
     ".from(Broker, ...) takes topic, qos, client_id"),
    (BROKER + "stream S = T.to(Broker, topic: \"a\", topic: \"b\")", "2:37", "parameter 'topic' is given twice", None),
    (BROKER + "stream S = T.to(Broker, client_id: \"x\")", "2:25", "unknown parameter 'client_id'",
     ".to(Broker, ...) takes topic, qos"),
    ("connector F = file(path: \"x\")\nstream S = T.from(F, topic: \"a\")", "2:22", "unknown parameter 'topic'",
     ".from(F, ...) takes no parameters"),
    ("connector F = file(path: \"x\")\nstream S = T.to(F, path: \"y\")", "2:20", "unknown parameter 'path'",
     ".to(F, ...) takes no parameters"),
    ("connector H = http(url: \"http://x\")\nstream S = T.to(H, method: \"PUT\")", "2:20", "unknown parameter 'method'",
     ".to(H, ...) takes no parameters"),
    ("connector N = nats(servers: \"nats://a\")\nstream S = T.to(N)", "2:17", "missing parameter 'topic'",
     ".to(N, ...) needs topic"),
    (BROKER + "stream S = T.from(Broker, topic: \"a/#/b\")", "2:34", "'#' may only be the last level of a topic", None),
    (BROKER + "stream S = T.from(Broker, topic: \"a/b+\")", "2:34", "'+' and '#' must stand alone between '/'s", None),
    (BROKER + "stream S = T.to(Broker, topic: \"a/+\")", "2:32", "topic cannot hold the wildcards '+' and '#' here",
     PUBLISH_HINT),
    ("connector N = nats(servers: \"nats://a\")\nstream S = T.from(N, topic: \"a.>.b\")", "2:29",
     "'>' may only be the last level of a topic", None),
    ("connector N = nats(servers: \"nats://a\")\nstream S = T.to(N, topic: \"a.*\")", "2:27",
     "topic cannot hold the wildcards '*' and '>' here", PUBLISH_HINT),
    ("connector N = nats(servers: \"nats://a\")\nstream S = T.to(N, topic: \"a..b\")", "2:27",
     "topic is not a valid NATS subject", "tokens are separated by single dots, no spaces"),
    # directions and names
    ("connector H = http(url: \"http://x\")\nstream S = T.from(H)", "2:19", ".from cannot read the http connector 'H'",
     "http connectors only take records (.to); .from reads mqtt, nats and file connectors"),
    (BROKER + "stream S = T.from(Brokr, topic: \"x\")", "2:19", "unknown connector 'Brokr'",
     "declared connectors are Broker"),
    ("stream S = T.to(Out)", "1:17", "unknown connector 'Out'", "no connectors are declared"),
    (BROKER + "stream A = T\nstream S = T.to(A)", "3:17", "unknown connector 'A'", "declared connectors are Broker"),
]


@pytest.mark.parametrize(("text", "where", "message", "hint"), CASES, ids=[c[2] for c in CASES])
def test_check_rule(text: str, where: str, message: str, hint: str | None) -> None:
    error_is(text, where, message, hint)


def test_diagnostic_underlines_the_offending_token() -> None:
    d = only('connector B = mqtt(host: "h", port: "1883")')
    assert d.render().splitlines()[1:] == [
        '    1 | connector B = mqtt(host: "h", port: "1883")',
        "      |                                     ^^^^^^",
    ]


def test_every_problem_is_reported() -> None:
    found = [(f"{d.pos.line}:{d.pos.col}", d.message) for d in diagnostics("""
        connector B = mqtt(qos: 3, port: "x")
        stream S = T.from(B).to(C)
        """)]
    assert found == [
        ("1:15", "missing parameter 'host'"),
        ("1:25", "qos must be 0 or 1"),
        ("1:34", "parameter 'port' must be an Int, not a String"),
        ("2:19", "missing parameter 'topic'"),
        ("2:25", "unknown connector 'C'"),
    ]


def test_a_constant_with_an_error_is_not_reported_again() -> None:
    found = diagnostics('let P = 1 / 0\nconnector B = mqtt(host: "h", port: P)')
    assert [d.message for d in found] == ["cannot evaluate constant 'P': division by zero"]


def test_a_clashing_connector_is_still_known_to_streams() -> None:
    found = diagnostics('stream Out = T.to(Out)\nconnector Out = file(path: "x")')
    assert [d.message for d in found] == ["name 'Out' is already used"]


def test_each_misplaced_to_is_reported() -> None:
    found = diagnostics(BROKER + "stream S = T.to(Broker).to(Broker).where(x).to(Broker)")
    assert [(d.pos.col, d.message) for d in found] == [
        (14, ".to must come after every other operation"),
        (25, ".to must come after every other operation"),
    ]


def test_emit_is_last_ignoring_context_and_to() -> None:
    program = check(BROKER + """
        context c
        stream S = T.where(x > 1).emit(y: x).to(Broker).context(c).to(Broker, topic: "t")
        """)
    (stream,) = program.streams
    assert stream.context == "c"
    assert [type(op).__name__ for op in stream.ops] == ["Where", "Emit"]
    assert [s.params["topic"] for s in stream.sinks] == ["S-output", "t"]
    d = only(BROKER + "stream S = T.emit(y: x).where(y > 1).to(Broker)")
    assert (d.pos, d.message) == (ast.SourcePos(2, 14), ".emit must be the last operation of a stream")


# ---------------------------------------------------------------- the password warning


def test_password_in_the_program_is_a_warning() -> None:
    program = check('connector B = mqtt(host: "h", username: "u", password: "s3cret")\nstream S = T.to(B)')
    (d,) = program.warnings
    assert (d.pos, d.severity, d.width) == (ast.SourcePos(1, 46), "warning", len("password"))
    assert d.message == "password written in the program: prefer password_env"
    assert d.hint == 'password_env: "MQTT_PASSWORD" reads it from that environment variable at start'
    assert program.connector("B").params["password"] == "s3cret"  # the connector needs it


def test_password_and_password_env_exclude_each_other() -> None:
    found = diagnostics('connector B = mqtt(host: "h", password: "x", password_env: "P")')
    assert [(f"{d.pos.line}:{d.pos.col}", d.severity, d.message) for d in found] == [
        ("1:31", "warning", "password written in the program: prefer password_env"),
        ("1:46", "error", "give password or password_env, not both"),
    ]


def test_diagnostics_never_quote_a_password() -> None:
    found = diagnostics('connector B = mqtt(host: "h", password: "pa\\"ss", port: "x")')
    # stars in place of the text between the quotes: the columns of the line stay where they were
    assert [d.source_line for d in found] == ['connector B = mqtt(host: "h", password: "******", port: "x")'] * 2
    stop = only('connector B = mqtt(password: "hunter2" host: "h")')
    assert (stop.message, stop.source_line) == (
        "expected ')' or ',', found 'host'", 'connector B = mqtt(password: "*******" host: "h")')
    assert parse_program('stream S = T.emit(password: "x")', "p.vpl").lines == ('stream S = T.emit(password: "*")',)


def test_password_env_gets_no_warning() -> None:
    program = check('connector B = mqtt(host: "h", username: "u", password_env: "BROKER_PASSWORD")')
    assert program.warnings == ()
    assert program.connector("B").params["password_env"] == "BROKER_PASSWORD"


def test_password_on_a_kind_without_one_is_only_unknown() -> None:
    d = only('connector N = nats(servers: "nats://a", password: "x")')
    assert (d.severity, d.message) == ("error", "unknown parameter 'password'")


# ---------------------------------------------------------------- resolved data


def test_connectors_resolve_with_defaults() -> None:
    program = check("""
        const KEEP = 2m
        const PORT = 1884
        connector Broker = mqtt(host: "localhost", port: PORT, keepalive: KEEP)
        connector Bus = nats(servers: "nats://127.0.0.1:4222", queue_group: "workers")
        connector Alerts = file(path: "alerts.jsonl")
        connector Hook = http(url: "https://example.com/hook", timeout: 1500ms)
        """)
    assert program.connectors == (
        ConnectorInfo("Broker", "mqtt", {
            "host": "localhost", "port": 1884, "client_id": "varpulis-mp", "qos": 0, "username": None,
            "password": None, "password_env": None, "keepalive": 120_000,
        }, ast.SourcePos(3, 11)),
        ConnectorInfo("Bus", "nats", {"servers": "nats://127.0.0.1:4222", "queue_group": "workers"},
                      ast.SourcePos(4, 11)),
        ConnectorInfo("Alerts", "file", {"path": "alerts.jsonl", "follow": False}, ast.SourcePos(5, 11)),
        ConnectorInfo("Hook", "http", {"url": "https://example.com/hook", "method": "POST", "timeout": 1500},
                      ast.SourcePos(6, 11)),
    )


def test_stream_endpoints_resolve_with_defaults_from_the_connector() -> None:
    program = check("""
        connector Broker = mqtt(host: "h", client_id: "plant-7", qos: 1)
        connector Bus = nats(servers: "nats://a", queue_group: "g")
        connector Alerts = file(path: "alerts.jsonl", follow: true)
        stream A = Reading.from(Broker, topic: "s/+/r").to(Broker).to(Bus, topic: "out.a")
        stream B = Reading.from(Broker, topic: "s/#", qos: 0, client_id: "other").to(Broker, topic: "b", qos: 0)
        stream C = Reading.from(Bus, topic: "s.>").to(Alerts)
        stream D = Reading.from(Bus, topic: "s.*", queue_group: "h")
        stream E = Other.from(Alerts)
        """)
    got = {s.name: (s.subscription, s.sinks) for s in program.streams}
    assert got == {
        "A": (Endpoint("Broker", {"topic": "s/+/r", "qos": 1, "client_id": "plant-7"}),
              (Endpoint("Broker", {"topic": "A-output", "qos": 1}), Endpoint("Bus", {"topic": "out.a"}))),
        "B": (Endpoint("Broker", {"topic": "s/#", "qos": 0, "client_id": "other"}),
              (Endpoint("Broker", {"topic": "b", "qos": 0}),)),
        "C": (Endpoint("Bus", {"topic": "s.>", "queue_group": "g"}), (Endpoint("Alerts", {}),)),
        "D": (Endpoint("Bus", {"topic": "s.*", "queue_group": "h"}), ()),
        "E": (Endpoint("Alerts", {}), ()),
    }
    assert [s.source for s in program.streams] == ["Reading"] * 4 + ["Other"]
    assert not any(s.source_is_stream for s in program.streams)
