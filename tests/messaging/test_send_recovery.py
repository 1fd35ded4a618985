"""In-process (sandbox ESP, no worker) checks of issue 15's rules: rows queued again by
reconciliation are sent (the broadcast reopens), cancel, the account the apology uses,
liveness and the settings that went away."""

import threading
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from incidents.apology.send import (
    apology_esp_account,
    apology_send_cancel,
    apology_send_pause,
    apology_send_resume,
    apology_send_start,
)
from messaging import broadcasts
from messaging.esp.base import EspError, RecipientResult, RecipientStatus
from messaging.esp.postmark import PostmarkAdapter
from messaging.esp.registry import broadcast_sender_for
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState, EspAccount
from tests.messaging.send_world import sendable_incident
from tests.messaging.test_broadcasts import run_to_end, states

pytestmark = pytest.mark.django_db


class LostAnswers:
    """Takes nothing and answers 502 for everything (the rows go in doubt); its search is
    down until `search_up` is set, then it truthfully holds nothing."""

    def __init__(self) -> None:
        self.search_up = False

    def send_batch(self, messages):
        return [RecipientResult(m.to, RecipientStatus.UNKNOWN, error="in doubt: 502",
                                metadata=m.metadata) for m in messages]

    def lookup_messages(self, metadata, *, since=None, until=None):
        if not self.search_up:
            raise EspError("Postmark: message search failed (503): Service Unavailable")
        return []


def test_rows_found_missing_on_a_completed_broadcast_are_sent_it_reopens(
        marketer, django_capture_on_commit_callbacks):
    world = sendable_incident(marketer, 6)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    lost = LostAnswers()
    run_to_end(broadcast, lost)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.COMPLETED
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 6}
    assert "503" in broadcast.reconcile_error  # never silent: the ESP's words are kept
    assert all("503" in r for r in Delivery.objects.filter(broadcast=broadcast)
               .values_list("reason", flat=True))

    lost.search_up = True
    with django_capture_on_commit_callbacks() as callbacks:
        result = broadcasts.broadcast_reconcile(broadcast=broadcast, adapter=lost, settle=0)
    assert result.requeued == 6 and result.reopened
    assert callbacks  # the chains are enqueued after commit
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.finished_at is None
    assert world.incident.events.filter(data__reopened=True, data__requeued=6).exists()
    esp = SandboxAdapter(outcomes={}, seed=1)
    run_to_end(broadcast, esp)
    assert Counter(m.recipient for m in esp.store.all_messages()) == Counter(world.included)
    assert states(broadcast) == {DeliveryState.SENT: 6}


def test_cancel_stops_the_waiting_rows_for_good(marketer):
    world = sendable_incident(marketer, 10)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=4)
    esp = SandboxAdapter(outcomes={}, seed=1)
    broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=esp)
    apology_send_pause(incident=world.incident, actor=marketer)
    apology_send_cancel(incident=world.incident, actor=marketer)
    assert states(broadcast) == {DeliveryState.SENT: 4, DeliveryState.CANCELLED: 6}
    event = world.incident.events.order_by("-id").first()
    assert event.data["cancelled"] and "6 people" in event.message
    with pytest.raises(ValidationError, match="paused broadcast can be resumed"):
        apology_send_resume(incident=world.incident, actor=marketer)
    with pytest.raises(ValidationError, match="already been sent"):
        apology_send_start(incident=world.incident, actor=marketer)
    run_to_end(broadcast, esp)
    assert len(esp.store.all_messages()) == 4


def test_a_claim_made_before_cancel_is_cancelled_at_the_gate(marketer):
    world = sendable_incident(marketer, 5)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="t-1")
    apology_send_cancel(incident=world.incident, actor=marketer)
    esp = SandboxAdapter(outcomes={}, seed=1)
    outcome = broadcasts.deliveries_send_claimed(broadcast=broadcast, claim=claim,
                                                 token="t-1", adapter=esp)
    broadcasts.token_unlock("t-1")
    assert outcome.released == 5 and not esp.store.all_messages()
    assert states(broadcast) == {DeliveryState.CANCELLED: 5}


def test_the_apology_goes_through_the_incidents_esp_account(marketer, settings):
    world = sendable_incident(marketer, 3, provider="postmark")
    account = apology_esp_account(incident=world.incident)
    assert account.provider == "postmark"
    settings.AMENDS_ESP_ACCOUNTS = {"POSTMARK_LOOPBACK": {
        "server_token": "pm-token", "base_url": "http://127.0.0.1:9"}}
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    assert broadcast.esp_account == account and broadcast.provider == "postmark"
    adapter = broadcasts.broadcast_adapter(broadcast)
    assert isinstance(adapter, PostmarkAdapter)
    assert adapter.client.session.headers["X-Postmark-Server-Token"] == "pm-token"
    assert adapter.sender.session.__class__ is broadcasts.PauseAwareSession


def test_an_account_without_credentials_says_which_variables_to_set():
    with pytest.raises(ValueError, match="AMENDS_ESP_ACCOUNT_POSTMARK_EU_API_KEY"):
        broadcast_sender_for(EspAccount(label="Postmark EU", provider="postmark"))


def test_a_sending_broadcast_with_no_chain_and_no_claim_is_recovering(marketer):
    world = sendable_incident(marketer, 3)
    # Liveness reads the database's advisory locks by broadcast id; the session's shared
    # worker may still hold one under an id an earlier (flushed) test used. Start this
    # broadcast's ids far from theirs.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('messaging_broadcast', 'id'), "
                       "GREATEST((SELECT last_value FROM messaging_broadcast_id_seq), 0) "
                       "+ 1000000)")
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    Broadcast.objects.filter(pk=broadcast.pk).update(heartbeat_at=None)
    broadcast.refresh_from_db()
    assert broadcasts.broadcast_liveness(broadcast=broadcast).recovering
    held, done = threading.Event(), threading.Event()

    def a_running_task() -> None:  # another session, as a worker's would be
        try:
            with broadcasts.chain_running(broadcast.pk):
                held.set()
                done.wait(10)
        finally:
            connection.close()

    task = threading.Thread(target=a_running_task)
    task.start()
    try:
        assert held.wait(10)
        live = broadcasts.broadcast_liveness(broadcast=broadcast)
    finally:
        done.set()
        task.join()
    assert live.chains == 1 and not live.recovering


@pytest.mark.parametrize("name", ["AMENDS_SEND_PROVIDER", "AMENDS_SEND_ESP_OPTIONS"])
def test_the_old_send_settings_stop_start_up_and_say_where_credentials_go(name):
    from tests.core.test_settings import PRODUCTION, _manage

    result = _manage("check", env={**PRODUCTION, name: "postmark"})
    assert result.returncode != 0 and name in result.stderr
    assert "AMENDS_ESP_ACCOUNTS" in result.stderr


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_asks_the_esp_again_and_a_completed_apology_reopens(marketer,
                                                                      celery_worker):
    """The search was down when the send ended; the watchdog (the beat's task) asks again
    on its own, the worker finds the rows missing at the ESP, and sends them."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from config.celery import app
    from messaging.esp.sandbox import RedisSandboxStore
    from tests.conftest import wait_for

    # Ids repeat from one test database to the next: no earlier run's sandbox messages.
    RedisSandboxStore(settings.REDIS_URL).clear()
    world = sendable_incident(marketer, 8, tag="beat")
    queue, node = celery_worker["queue"], celery_worker["node"]
    # The send itself runs here, with answers lost and the search down: the worker steps
    # aside until the beat's part.
    app.control.cancel_consumer(queue, destination=[node], reply=True)
    try:
        broadcast = apology_send_start(incident=world.incident, actor=marketer)
        app.control.purge()
        run_to_end(broadcast, LostAnswers())  # nothing reached the ESP
    finally:
        app.control.add_consumer(queue, destination=[node], reply=True)
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 8}
    # An hour later: the ESP's search is trusted with "never received", and the last
    # question to the ESP (which failed) is old enough to ask again.
    hour_ago = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(broadcast=broadcast).update(claimed_at=hour_ago)
    Broadcast.objects.filter(pk=broadcast.pk).update(reconciled_at=hour_ago)
    broadcasts.broadcast_watchdog()
    wait_for(lambda: states(broadcast) == {DeliveryState.SENT: 8}
             and Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.COMPLETED,
             timeout=60)
    assert world.incident.events.filter(data__reopened=True, data__requeued=8).exists()
