"""Sending's failure paths (issue 15), with a real worker on Redis and a loopback Postmark
that enforces its documented search limit (offset + count <= 10,000).

- reconciliation past 10,000 messages pages by time window, never by a bare offset;
- a search that is down leaves rows in doubt with the ESP's words; once it is back, "Ask
  the ESP again" sends each missing person exactly one (the broadcast reopens);
- Pause through the page answers without waiting for the ESP (hanging, or Retry-After: 30),
  and nothing reaches the ESP that started after the acknowledgement;
- dead workers are noticed by the watchdog in seconds.
"""

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from incidents.apology.send import apology_send_start
from incidents.models import TimelineEvent
from messaging import broadcasts
from messaging.esp.postmark import PostmarkAdapter
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState, EspAccount
from tests.conftest import wait_for
from tests.loopback.esps import PostmarkDelivery, PostmarkLoopback
from tests.messaging.send_world import sendable_incident
from tests.messaging.test_send_worker import chains_idle, ledger, received, status

SEARCH = "/messages/outbound"


# --- The search itself (no worker) -------------------------------------------------------

def test_postmark_lookup_pages_by_time_window_past_the_search_limit():
    """25,000 messages of one broadcast within a minute: a bare offset would hit Postmark's
    10,000 limit; time windows find every one and no page is refused."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    with PostmarkLoopback() as esp:
        esp.deliveries.extend(
            PostmarkDelivery(message_id=f"m{i}", recipient=f"r{i}@example.test",
                             metadata={"broadcast_id": "7", "recipient_id": str(i)},
                             subject="Sorry", accepted=start + timedelta(seconds=i / 400))
            for i in range(25_000))
        esp.deliveries.append(PostmarkDelivery(  # another broadcast: not ours
            message_id="other", recipient="o@example.test",
            metadata={"broadcast_id": "8", "recipient_id": "1"}, subject="x",
            accepted=start))
        adapter = PostmarkAdapter(server_token=esp.server_token, base_url=esp.url)
        found = adapter.lookup_messages({"broadcast_id": "7"},
                                        since=start - timedelta(minutes=1),
                                        until=datetime.now(UTC))
        searches = esp.calls_to("GET", SEARCH)
    assert sorted(int(m.metadata["recipient_id"]) for m in found) == list(range(25_000))
    assert searches and all(c.status == 200 for c in searches)
    assert all(int(c.query["offset"][0]) + int(c.query["count"][0]) <= 10_000
               for c in searches)
    assert all("fromdate" in c.query and "todate" in c.query for c in searches)


def test_the_loopback_refuses_offsets_past_ten_thousand_as_postmark_does():
    with PostmarkLoopback() as esp:
        adapter = PostmarkAdapter(server_token=esp.server_token, base_url=esp.url)
        response = adapter.client.request("GET", SEARCH, params={"count": "500",
                                                                 "offset": "9600"})
    assert response.status == 422
    assert "10,000" in response.body["Message"]


# --- With a worker -------------------------------------------------------------------------

class Beat:
    """The beat's watchdog (every 0.5 s here, 2 s in production) in a thread of the test."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(self.every):
                broadcasts.broadcast_watchdog()
        finally:
            connection.close()

    def __enter__(self) -> "Beat":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def account_allows(rate: int) -> None:
    """The customer's real limit on their ESP account, as an admin sets it: the send form
    may go up to it, never beyond (issue 13)."""
    EspAccount.objects.filter(provider="postmark").update(rate_per_second=rate)


def _check_no_duplicates_no_misses(world, broadcast, esp) -> Counter:
    assert not esp.duplicates()
    assert received(esp) == Counter(world.included)  # everyone exactly once
    states = Counter(ledger(broadcast).values())
    assert set(states) <= {DeliveryState.SENT, DeliveryState.RESOLVED_SENT}, states
    return states


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_20000_recipients_with_kills_reconcile_past_the_search_limit(marketer, send_worker,
                                                                     send_esp):
    """The worker is SIGKILLed three times mid-send and restarted; the watchdog restarts
    the chains; reconciliation looks 20,000 messages up through a search that refuses
    offset + count > 10,000. 0 duplicates, 0 misses, 0 rows in doubt."""
    rng = random.Random(15)
    world = sendable_incident(marketer, 20_000, provider="postmark")
    # Each call is taken at once but answered 0.2 s later: kills land between the ESP's
    # accept and our commit.
    send_esp.delay_next(0.2, times=100_000)
    recoveries = []
    with Beat():
        account_allows(20_000)
        broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                       batch_size=500, rate_per_second=20_000)
        for _kill in range(3):
            before = len(send_esp.deliveries)
            wait_for(lambda b=before: len(send_esp.deliveries) > b + 1000, timeout=60)
            time.sleep(rng.uniform(0.0, 0.2))
            send_worker.kill()
            killed = time.monotonic()
            send_worker.start()
            now = len(send_esp.deliveries)
            wait_for(lambda n=now: len(send_esp.deliveries) > n
                     or status(broadcast) == BroadcastStatus.COMPLETED, timeout=60)
            recoveries.append(time.monotonic() - killed)
        wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED
                 and not Delivery.objects.filter(broadcast=broadcast,
                                                 state=DeliveryState.IN_DOUBT).exists(),
                 timeout=90)
    states = _check_no_duplicates_no_misses(world, broadcast, send_esp)
    searches = send_esp.calls_to("GET", SEARCH)
    assert searches, "the kills left nothing in doubt: reconciliation was not exercised"
    assert all(c.status == 200 for c in searches)
    print(f"\n20,000 with 3 kills: {dict(states)}; {len(searches)} search calls; "
          f"kill → next message at the ESP: {', '.join(f'{r:.1f} s' for r in recoveries)}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_search_down_at_the_end_then_ask_the_esp_again(marketer, send_worker, send_esp,
                                                       client: Client):
    """Some calls fail with 500 after nothing was taken (the ESP has not got them: in
    doubt); the search is down when the send ends, so they stay in doubt with the ESP's
    words. With the search back, "Ask the ESP again" on the page queues them again, the
    broadcast reopens and each of them gets exactly one."""
    world = sendable_incident(marketer, 3000, provider="postmark")
    send_esp.set_faults(0.25, statuses=(500,), seed=3, paths=r"^/email/batch$")
    send_esp.fail_next(503, times=1_000, paths=r"^/messages/outbound$")
    account_allows(10_000)
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=200, rate_per_second=10_000)
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED, timeout=60)
    doubtful = Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT)
    assert doubtful.exists()
    assert all("503" in reason for reason in doubtful.values_list("reason", flat=True))
    broadcast.refresh_from_db()
    assert "503" in broadcast.reconcile_error
    missing = set(doubtful.values_list("email", flat=True))
    assert not missing & set(received(send_esp))

    with send_esp.lock:  # the search is back
        send_esp._scripted.clear()
    send_esp.set_faults(0.0)
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-detail", args=[world.incident.pk]))
    assert "Ask the ESP again" in page.content.decode()
    response = client.post(reverse("incidents:apology-send-reconcile",
                                   args=[world.incident.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f"{len(missing)} queued again" in response.content.decode()
    assert TimelineEvent.objects.filter(incident=world.incident,
                                        data__reopened=True).exists()
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED
             and not Delivery.objects.filter(broadcast=broadcast,
                                             state=DeliveryState.PENDING).exists(),
             timeout=60)
    counts = received(send_esp)
    assert all(counts[email] == 1 for email in missing)
    _check_no_duplicates_no_misses(world, broadcast, send_esp)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.parametrize("esp_trouble", ["hangs", "retry_after_30"])
def test_pause_through_the_page_never_waits_for_the_esp(marketer, send_worker, send_esp,
                                                        client: Client, esp_trouble):
    world = sendable_incident(marketer, 2000, provider="postmark")
    if esp_trouble == "hangs":
        send_esp.delay_next(6.0, times=1_000)  # takes the batch, answers 6 s later
    else:
        send_esp.fail_next(429, times=1_000, retry_after="30", paths=r"^/email/batch$")
    account_allows(10_000)
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=100, rate_per_second=10_000)
    wait_for(lambda: send_esp.calls_to("POST", "/email/batch"), timeout=30)
    client.force_login(marketer)
    url = reverse("incidents:apology-send-pause", args=[world.incident.pk])
    started = time.perf_counter()
    response = client.post(url, HTTP_HX_REQUEST="true")
    took = time.perf_counter() - started
    acknowledged = time.time()
    assert response.status_code == 200
    assert status(broadcast) == BroadcastStatus.PAUSED
    if esp_trouble == "hangs":
        assert "batch was already at the ESP, settling" in response.content.decode()
    wait_for(lambda: chains_idle(broadcast), timeout=30)
    late = [c for c in send_esp.calls_to("POST", "/email/batch") if c.at > acknowledged]
    assert not late, f"{len(late)} ESP calls started after the pause was acknowledged"
    assert not Delivery.objects.filter(broadcast=broadcast,
                                       state=DeliveryState.CLAIMED).exists()
    print(f"\npause through the page, ESP {esp_trouble}: answered in {took * 1000:.0f} ms")


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_cancel_stops_for_good_and_nobody_waiting_gets_it(marketer, send_worker, send_esp,
                                                          client: Client):
    world = sendable_incident(marketer, 1500, provider="postmark")
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=100, rate_per_second=300)
    wait_for(lambda: len(send_esp.deliveries) >= 100, timeout=60)
    client.force_login(marketer)
    url = reverse("incidents:apology-send-cancel", args=[world.incident.pk])
    refused = client.post(url, HTTP_HX_REQUEST="true")  # no confirmation ticked
    assert "Tick the confirmation" in refused.content.decode()
    response = client.post(url, {"confirm": "on"}, HTTP_HX_REQUEST="true")
    cancelled_at = time.time()
    assert response.status_code == 200
    assert status(broadcast) == BroadcastStatus.CANCELLED
    wait_for(lambda: chains_idle(broadcast), timeout=30)
    assert not [c for c in send_esp.calls_to("POST", "/email/batch") if c.at > cancelled_at]
    states = Counter(ledger(broadcast).values())
    assert states[DeliveryState.CANCELLED] > 0
    assert not states[DeliveryState.PENDING] and not states[DeliveryState.CLAIMED]
    assert states[DeliveryState.SENT] == sum(received(send_esp).values())
    assert TimelineEvent.objects.filter(incident=world.incident,
                                        data__cancelled=True).exists()
    # Nothing brings it back: no resume, and the watchdog leaves it alone.
    assert broadcasts.broadcast_watchdog(stale_after=0) == []
    resume = client.post(reverse("incidents:apology-send-resume", args=[world.incident.pk]),
                         HTTP_HX_REQUEST="true")
    assert "Only a paused broadcast can be resumed" in resume.content.decode()
    assert Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.CANCELLED
