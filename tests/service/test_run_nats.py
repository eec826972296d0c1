"""`run` with NATS (RUN.md §1): a real nats-server, real worker processes; what a subscription
reads and a sink publishes equals simulate's; wildcard subjects and queue groups do what NATS
says; bad payloads are counted by reason; a server that is down at the start is waited for."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brokers import NatsClient, NatsServer, wait_until
from tests.service.live import (
    READINGS,
    LiveRun,
    by_stream,
    payload_members,
    publish_all,
    reading_events,
    reading_messages,
    reference_payload,
    simulated,
)
from tests.service.programs import NATS_PIPELINE, NATS_QUEUE, NATS_WITH_INPUT, program_file

SUBSCRIBED = "connector Bus: subscribed, receiving"


class LargePayloadNats(NatsServer):
    """A server that takes payloads of up to 2 MiB (1 MiB is its default), so that the
    connector's own limit is what a larger message meets."""

    def command(self) -> list[str]:
        config = self.workdir / "nats.conf"
        config.write_text("max_payload: 2097152\n")
        return [*super().command(), "-c", str(config)]


def test_subscription_and_sink_in_two_contexts_give_what_simulate_gives(tmp_path: Path,
                                                                          nats_server: NatsServer) -> None:
    program = program_file(tmp_path, NATS_PIPELINE, port=nats_server.port)
    expected = simulated(program, reading_events())
    watcher = NatsClient(nats_server.url, subscribe="alerts.>")
    # Subjects that `sensors.*.reading` does not match: `*` is exactly one token.
    unmatched = reading_messages(READINGS[:3], "sensors.{sensor}.status") + reading_messages(
        READINGS[:3], "sensors.{sensor}.reading.raw") + reading_messages(READINGS[:3], "sensors.reading")
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)
        publish_all(NatsClient(nats_server.url), unmatched + reading_messages(READINGS, "sensors.{sensor}.reading"))
        run.wait_for_records("Hot", len(expected["Hot"]))
        status, records = run.stop()
    assert status == 0, run.stderr
    assert by_stream(records) == expected
    assert "Events processed: 120\n" in run.stderr + "\n"
    # What the sink published: the reference payloads, in the stream's order, the flush included.
    wait_until(lambda: len(watcher.payloads()) >= len(expected["Alerts"]), 10, "the published alerts")
    published = [payload_members(p) for p in watcher.payloads()]
    watcher.close()
    assert published == [reference_payload("Alerts", ts, fields) for ts, fields in expected["Alerts"]]


def test_a_queue_group_shares_the_messages_among_its_members(tmp_path: Path, nats_server: NatsServer) -> None:
    program = program_file(tmp_path, NATS_QUEUE, port=nats_server.port)
    jobs = [(f"jobs.line{n % 3}.start", json.dumps({"n": n, "ts": n}).encode()) for n in range(200)]
    with LiveRun(program) as first, LiveRun(program) as second:
        first.wait_for_err(SUBSCRIBED)
        second.wait_for_err(SUBSCRIBED)
        publish_all(NatsClient(nats_server.url), jobs)
        wait_until(lambda: len(first.records_of("Done")) + len(second.records_of("Done")) >= len(jobs), 20,
                   "every job done by one member or the other")
        ends = [first.stop(), second.stop()]
    assert [status for status, _ in ends] == [0, 0], first.stderr + second.stderr
    done = [[r["fields"]["n"] for r in records if r["stream"] == "Done"] for _, records in ends]
    assert sorted(done[0] + done[1]) == list(range(len(jobs)))  # each job once: none lost, none twice
    assert done[0] and done[1]  # both members took their share (all 200 to one: odds 2**-199)
    assert all(taken == sorted(taken) for taken in done)  # each member in the order published


def test_bad_payloads_are_counted_by_reason_and_never_fatal(tmp_path: Path) -> None:
    server = LargePayloadNats(tmp_path)
    server.start()
    program = program_file(tmp_path, NATS_WITH_INPUT, port=server.port)
    bad = [b"not json", b"[1, 2]", b'{"v": {"nested": 1}}', b"\xff\xfe", b'{"event_type": "Other", "v": 1}',
           b'{"v": 1, "timestamp": "yesterday"}', b'{"event_type": 7, "v": 1}', b"x" * (1024 * 1024 + 10)]
    try:
        with LiveRun(program) as run:
            run.wait_for_err(SUBSCRIBED)
            publish_all(NatsClient(server.url), [(subject, payload) for payload in bad
                                                 for subject in ("r.x", "r.y.z", "r.x")]
                        + [("r.x", b'{"v": 42, "ts": 5}')])
            run.wait_for_records("Kept", 1)
            status, records = run.stop()
    finally:
        server.stop()
    assert status == 0, run.stderr
    assert by_stream(records) == {"Seen": [(5, {"v": 42})], "Kept": [(5, {"v": 42})]}
    assert f"Rejected events:  {len(bad) * 3}" in run.stderr
    assert run.rejection_totals() == {"invalid json": 3, "not an object": 3, "unsupported value": 3,
                                      "invalid utf-8": 3, "type mismatch": 3, "bad timestamp": 3,
                                      "bad event type": 3, "too large": 3}
    assert "Traceback" not in run.stderr


def test_a_server_down_at_the_start_is_waited_for(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)  # not started yet: nothing listens on its port
    program = program_file(tmp_path, NATS_WITH_INPUT, port=server.port)
    with LiveRun(program, stdin=True) as run:
        run.wait_for_err("connector Bus: cannot connect")
        # Started and ready meanwhile: the default input is read and processed.
        run.send(['@1 Manual { v: 1 }', '@2 Manual { v: 2 }'])
        run.wait_for_records("Local", 2)
        server.start()
        try:
            run.wait_for_err(SUBSCRIBED)
            publish_all(NatsClient(server.url), [("r.late", b'{"v": 7, "ts": 10}')])
            run.wait_for_records("Kept", 1)
            status, records = run.stop()
        finally:
            server.stop()
    assert status == 0, run.stderr
    assert by_stream(records) == {"Local": [(1, {"v": 1}), (2, {"v": 2})], "Seen": [(10, {"v": 7})],
                                  "Kept": [(10, {"v": 7})]}
    assert "Traceback" not in run.stderr
