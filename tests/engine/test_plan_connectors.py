"""The plan's connectors (RUN.md §1.2): which process holds each subscription and sink, one
subscription per (type, connector, parameters), the routes of a subscribed type, mqtt client ids,
and the plan as plain data."""

from __future__ import annotations

from tests.lang.test_checker import check
from varpulis_mp.engine.plan import ConnectorPlan, Plan, SinkPlan, SubscriptionPlan, build_plan
from varpulis_mp.runtime import wire

PROGRAM = """
    context ingest
    context compute

    connector Broker = mqtt(host: "localhost", client_id: "plant-7", qos: 1, password: "s3cret")
    connector Bus = nats(servers: "nats://127.0.0.1:4222")
    connector Alerts = file(path: "alerts.jsonl")

    stream Readings = SensorReading.from(Broker, topic: "sensors/+/reading")
        .context(ingest)
        .where(temperature > 80.0)
        .to(Broker, topic: "alerts/hot")
        .to(Alerts)
    stream Stats = SensorReading.from(Broker, topic: "sensors/+/reading")
        .context(compute)
        .to(Bus, topic: "stats")
    stream Other = SensorReading.from(Broker, topic: "sensors/#")
        .context(compute)
    stream Plain = SensorReading
    stream Orders = Order.from(Bus, topic: "orders.>").context(compute)
    stream Late = Readings.context(compute).to(Broker)
"""


def plan() -> Plan:
    return build_plan(check(PROGRAM))


def test_a_subscription_runs_where_its_first_declaring_stream_runs() -> None:
    p = plan()
    assert p.context("ingest").subscriptions == [
        SubscriptionPlan("Broker", "mqtt", "SensorReading",
                         {"topic": "sensors/+/reading", "qos": 1, "client_id": "plant-7-ingest"},
                         ["Readings", "Stats"]),
    ]
    assert p.context("compute").subscriptions == [
        SubscriptionPlan("Broker", "mqtt", "SensorReading",
                         {"topic": "sensors/#", "qos": 1, "client_id": "plant-7-compute"}, ["Other"]),
        SubscriptionPlan("Bus", "nats", "Order", {"topic": "orders.>", "queue_group": None}, ["Orders"]),
    ]
    assert p.context("default").subscriptions == []
    assert [(ctx, sub.streams) for ctx, sub in p.subscriptions()] == [
        ("ingest", ["Readings", "Stats"]), ("compute", ["Other"]), ("compute", ["Orders"]),
    ]


def test_a_subscribed_type_is_routed_to_every_reader() -> None:
    p = plan()
    # Plain reads SensorReading without .from, in the default context: it gets the subscriptions'
    # events too (RUN.md §1.2), and the default input feeds only the types read without .from.
    assert p.type_routes == {"SensorReading": ["ingest", "compute", "default"], "Order": ["compute"]}
    assert p.default_input_types == ["SensorReading"]


def test_sinks_are_held_by_their_stream_s_process() -> None:
    p = plan()
    assert p.context("ingest").sinks == {
        "Readings": [
            SinkPlan("Broker", "mqtt", {"topic": "alerts/hot", "qos": 1, "client_id": "plant-7-ingest"}),
            SinkPlan("Alerts", "file", {}),
        ],
    }
    assert p.context("compute").sinks == {
        "Stats": [SinkPlan("Bus", "nats", {"topic": "stats"})],
        "Late": [SinkPlan("Broker", "mqtt", {"topic": "Late-output", "qos": 1, "client_id": "plant-7-compute"})],
    }
    assert p.context("default").sinks == {}


def test_connectors_are_in_the_plan_with_their_parameters() -> None:
    p = plan()
    assert list(p.connectors) == ["Broker", "Bus", "Alerts"]
    assert p.connectors["Broker"] == ConnectorPlan("Broker", "mqtt", {
        "host": "localhost", "port": 1883, "client_id": "plant-7", "qos": 1, "username": None,
        "password": "s3cret", "password_env": None, "keepalive": 60_000,
    })


def test_a_program_without_contexts_holds_everything_in_the_default_process() -> None:
    p = build_plan(check("""
        connector Broker = mqtt(host: "h")
        stream S = T.from(Broker, topic: "t").to(Broker)
        """))
    (ctx,) = p.contexts
    assert ctx.name == "default"
    assert ctx.subscriptions[0].params["client_id"] == "varpulis-mp-default"
    assert ctx.sinks["S"][0].params == {"topic": "S-output", "qos": 0, "client_id": "varpulis-mp-default"}
    assert p.default_input_types == []


def test_plan_travels_as_plain_data() -> None:
    p = plan()
    (data,) = wire.decode(wire.encode([p.to_data()]))  # msgpack, as between processes
    assert Plan.from_data(data) == p


def test_a_plan_without_connectors_is_unchanged() -> None:
    p = build_plan(check("context a\nstream S = T.context(a)\nstream U = S.context(a)"))
    assert p.connectors == {}
    assert p.contexts[0].subscriptions == [] and p.contexts[0].sinks == {}
    assert p.default_input_types == ["T"]
