"""The inbox between a broker client's thread and the processing loop: bound, wake descriptor, routing."""

from __future__ import annotations

import select
import threading

from varpulis_mp.io.connector_spec import ConnectorCounters
from varpulis_mp.io.inbox import Inbox, Message
from varpulis_mp.io.topics import MQTT_TOPICS, Route, Router


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


ROUTER = Router(MQTT_TOPICS, [Route("a/#", "A"), Route("a/+/x", "X")], ["a/#", "b/#"])


def message(topic: str, payload: bytes, acks: list[str] | None = None) -> Message:
    return Message(topic, payload, ROUTER, (lambda: acks.append(topic)) if acks is not None else None)


def test_the_wake_descriptor_is_readable_exactly_while_messages_wait() -> None:
    inbox = Inbox("B", ConnectorCounters())
    fd = inbox.wake_fd()
    assert not readable(fd)
    inbox.put(message("a/1", b"{}"))
    inbox.put(message("a/2", b"{}"))
    assert readable(fd)
    assert len(inbox.take(limit=1)[0].events) == 1
    assert readable(fd)
    assert len(inbox.take()[0].events) == 1
    assert not readable(fd)
    inbox.close()


def test_every_message_taken_is_acknowledged_only_when_its_batch_is_committed() -> None:
    counters = ConnectorCounters()
    inbox = Inbox("B", counters)
    acks: list[str] = []
    for topic, payload in [("a/1/x", b'{"v": 1}'), ("a/1/x", b'{"event_type": "X", "v": 2}'),
                           ("a/2", b'{"event_type": "X"}'), ("b/1", b"{}"), ("c", b"{}"), ("a/3", b"[]")]:
        inbox.put(message(topic, payload, acks))
    batch, pending = inbox.take()
    assert acks == []  # nothing is acknowledged before its records are out
    assert [(e.type, e.fields) for e in batch.events] == [("A", {"v": 1}), ("X", {"v": 1}), ("X", {"v": 2})]
    assert batch.events[0].fields is not batch.events[1].fields
    assert [(r.reason, r.payload) for r in batch.rejected] == [
        ("type mismatch", b'{"event_type": "X"}'), ("unexpected topic", b"{}"), ("not an object", b"[]")]
    assert counters.ignored == 1  # b/1: the wire pattern b/# brought it, no subscription reads it
    for ack in pending:
        ack()
    assert acks == ["a/1/x", "a/1/x", "a/2", "b/1", "c", "a/3"]
    inbox.close()


def test_a_full_inbox_blocks_the_client_thread_until_room_or_close() -> None:
    inbox = Inbox("B", ConnectorCounters(), capacity=2)
    assert inbox.put(message("a/1", b"{}"))
    assert inbox.put(message("a/2", b"{}"))
    assert not inbox.put(message("a/3", b"{}"), block=False)
    done = threading.Event()
    results: list[bool] = []

    def client_thread() -> None:
        results.append(inbox.put(message("a/4", b"{}")))
        results.append(inbox.put(message("a/5", b"{}")))
        results.append(inbox.put(message("a/6", b"{}")))
        done.set()

    t = threading.Thread(target=client_thread)
    t.start()
    assert not done.wait(0.3)
    assert len(inbox.take(limit=1)[0].events) == 1  # room for one: a/4 goes in, a/5 waits
    assert not done.wait(0.3)
    inbox.close()  # a closing source releases the client thread
    assert done.wait(5)
    t.join(5)
    assert results == [True, False, False]
