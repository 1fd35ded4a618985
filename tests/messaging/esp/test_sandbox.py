import os
import uuid
from collections import Counter

import pytest
from django.conf import settings

from messaging.esp.base import ControlAction, EspTemporaryError, OutgoingMessage, RecipientStatus
from messaging.esp.sandbox import InMemorySandboxStore, RedisSandboxStore, SandboxAdapter

from .helpers import FakeSleep


def msg(n: int, broadcast: int = 1, **kw) -> OutgoingMessage:
    return OutgoingMessage(to=f"r{n}@example.test", subject="Sorry", from_email="a@shop.test",
                           text="Hi", metadata={"broadcast_id": broadcast, "recipient_id": n},
                           **kw)


def sandbox(**kw) -> SandboxAdapter:
    return SandboxAdapter(**{"sleep": FakeSleep(), **kw})


def fates(adapter, messages):
    adapter.send_batch(messages)
    return {m.recipient: tuple(e.event_type for e in m.events)
            for m in adapter.lookup_messages({})}


def test_every_accepted_message_gets_an_id_and_keeps_our_metadata():
    adapter = sandbox(seed=1)
    results = adapter.send_batch([msg(n) for n in range(5)])
    assert all(r.status == RecipientStatus.ACCEPTED and r.message_id for r in results)
    assert len({r.message_id for r in results}) == 5
    (stored,) = adapter.lookup_messages({"broadcast_id": "1", "recipient_id": "3"})
    assert stored.message_id == results[3].message_id and stored.recipient == "r3@example.test"


def test_same_seed_same_story_whatever_the_batch_order():
    messages = [msg(n) for n in range(300)]
    outcomes = {"bounced_hard": 0.1, "bounced_soft": 0.1, "complained": 0.05,
                "unsubscribed": 0.05}
    first = fates(sandbox(seed=42, outcomes=outcomes), messages)
    again = fates(sandbox(seed=42, outcomes=outcomes), list(reversed(messages)))
    other = fates(sandbox(seed=43, outcomes=outcomes), messages)
    assert first == again and first != other


def test_outcome_probabilities_shape_the_events():
    adapter = sandbox(seed=5, outcomes={"bounced_hard": 0.2, "bounced_soft": 0.1,
                                        "complained": 0.1, "unsubscribed": 0.1})
    kinds = Counter(fates(adapter, [msg(n) for n in range(2000)]).values())
    assert set(kinds) == {("delivered",), ("bounced",), ("deferred",),
                          ("delivered", "complained"), ("delivered", "unsubscribed")}
    assert 300 < kinds[("bounced",)] < 500  # about 20 %
    assert 800 < kinds[("delivered",)] < 1200  # about 50 %


def test_events_carry_ids_metadata_and_order():
    adapter = sandbox(seed=9, outcomes={"complained": 1.0})
    adapter.send_batch([msg(1)])
    (stored,) = adapter.lookup_messages({"recipient_id": "1"})
    delivered, complained = stored.events
    assert (delivered.event_type, complained.event_type) == ("delivered", "complained")
    assert delivered.timestamp < complained.timestamp
    assert complained.metadata == {"broadcast_id": "1", "recipient_id": "1"}
    assert len({delivered.event_id, complained.event_id}) == 2


def test_undeliverable_addresses_are_rejected_without_an_id():
    results = sandbox().send_batch([OutgoingMessage(to="x@nowhere.invalid", subject="s",
                                                    from_email="a@b.test", text="t")])
    assert results[0].status == RecipientStatus.REJECTED and results[0].message_id is None


def test_temporary_failures_are_retried_then_reported():
    sleep = FakeSleep()
    adapter = SandboxAdapter(failure_rate=1.0, seed=3, sleep=sleep)
    with pytest.raises(EspTemporaryError, match="simulated 429"):
        adapter.send_batch([msg(1)])
    assert len(sleep.delays) == 4 and adapter.lookup_messages({}) == []


def test_failure_rate_is_deterministic_with_a_seed():
    def attempts(seed):
        adapter = SandboxAdapter(failure_rate=0.5, seed=seed, sleep=FakeSleep())
        out = []
        for n in range(20):
            try:
                adapter.send_batch([msg(n)])
                out.append(True)
            except EspTemporaryError:
                out.append(False)
        return out, [m.message_id for m in adapter.lookup_messages({})]
    assert attempts(11) == attempts(11)


def test_latency_is_simulated_through_the_injected_sleep():
    sleep = FakeSleep()
    SandboxAdapter(latency=0.25, sleep=sleep).send_batch([msg(1)])
    assert sleep.delays == [0.25]


def test_lost_answers_leave_messages_in_doubt_but_findable():
    adapter = sandbox(seed=1, in_doubt_rate=1.0)
    results = adapter.send_batch([msg(1), msg(2)])
    assert {r.status for r in results} == {RecipientStatus.UNKNOWN}
    assert all(r.message_id is None for r in results)
    # reconciliation: the sandbox did accept them
    assert len(adapter.lookup_messages({"broadcast_id": "1"})) == 2


def test_campaign_control_works_for_every_action():
    adapter = sandbox()
    adapter.register_campaign("spring", status="sending", sent=120, total=1000)
    paused = adapter.stop_campaign("spring")
    assert paused.ok and paused.action == ControlAction.PAUSE
    assert paused.recipients_sent_before_stop == 120 and paused.esp_status == "paused"
    assert adapter.pause_campaign("spring").detail.startswith("Nothing to do")
    assert adapter.resume_campaign("spring").esp_status == "sending"
    assert adapter.cancel_campaign("spring").esp_status == "canceled"
    refused = adapter.resume_campaign("spring")
    assert not refused.ok and "canceled" in refused.detail


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="failure_rate"):
        SandboxAdapter(failure_rate=2)
    with pytest.raises(ValueError, match="unknown"):
        SandboxAdapter(outcomes={"exploded": 0.1})
    with pytest.raises(ValueError, match="sum"):
        SandboxAdapter(outcomes={"bounced_hard": 0.8, "complained": 0.8})


@pytest.fixture
def redis_store():
    store = RedisSandboxStore(settings.REDIS_URL, prefix=f"test-sandbox-{uuid.uuid4().hex}")
    yield store
    store.clear()


def test_redis_store_keeps_messages_across_adapters(redis_store):
    first = sandbox(seed=2, store=redis_store, outcomes={"bounced_hard": 1.0})
    sent = first.send_batch([msg(1), msg(2, broadcast=9)])
    # a new process (new adapter) sees what the first accepted
    again = sandbox(seed=2, store=redis_store)
    (found,) = again.lookup_messages({"broadcast_id": "1", "recipient_id": "1"})
    assert found.message_id == sent[0].message_id
    assert found.events[0].event_type == "bounced"
    assert len(again.lookup_messages({})) == 2
    again.register_campaign("c", status="scheduled")
    assert first.cancel_campaign("c").ok


def test_every_key_of_the_redis_store_expires():
    store = RedisSandboxStore(settings.REDIS_URL, prefix=f"test-sandbox-{uuid.uuid4().hex}",
                              ttl=120)
    try:
        esp = sandbox(seed=2, store=store)
        esp.send_batch([msg(1), msg(2, broadcast=9)])
        esp.register_campaign("c", status="sending")
        esp.pause_campaign("c")
        keys = list(store.redis.scan_iter(match=f"{store.prefix}:*"))
        assert len(keys) >= 6  # seq, all, two messages, metadata sets, campaign
        assert all(0 < store.redis.ttl(k) <= 120 for k in keys)
    finally:
        store.clear()


def test_the_products_store_is_this_test_sessions_own(settings):
    from messaging.esp.registry import default_adapter

    store = default_adapter().store
    assert isinstance(store, RedisSandboxStore)
    assert store.prefix == settings.AMENDS_ESP["SANDBOX_REDIS_PREFIX"]
    assert store.prefix == f"amends-test-{os.getpid()}:sandbox"  # never a shared prefix
    assert store.ttl == settings.AMENDS_ESP["SANDBOX_TTL"] == 3600


def test_in_memory_store_is_the_default():
    assert isinstance(SandboxAdapter().store, InMemorySandboxStore)
