"""Step 5's send panel: the gate, the confirmation, live progress, pause / resume and the
decisions on rows in doubt — per role, as full pages and as htmx fragments."""

import pytest
from django.urls import reverse

from incidents.apology.send import SendProgress, apology_send_start
from incidents.services import stakeholder_add
from messaging import broadcasts
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState
from tests.messaging.send_world import sendable_incident

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(marketer):
    return sendable_incident(marketer, 7)


@pytest.fixture
def sending(world, marketer):
    apology_send_start(incident=world.incident, actor=marketer, batch_size=3)
    return world


def url(name, incident, *args):
    return reverse(f"incidents:{name}", args=[incident.pk, *args])


def test_the_gate_asks_to_confirm_the_number_of_people(client, marketer, world):
    client.force_login(marketer)
    html = client.get(url("incident-detail", world.incident)).content.decode()
    assert 'id="send-gate-signoff"' in html
    assert "Send to 7 people? This cannot be undone." in html
    assert 'hx-confirm="Send to 7 people? This cannot be undone."' in html
    assert 'name="expected_count" value="7"' in html
    assert 'id="send-apology">Send the apology to 7 people' in html


def test_linter_errors_keep_the_button_disabled_with_the_reasons(client, marketer, world):
    world.incident.apology.__class__.objects.filter(pk=world.incident.apology.pk).update(
        from_email="noreply@northwind.test")
    client.force_login(marketer)
    html = client.get(url("incident-detail", world.incident)).content.decode()
    assert 'id="send-apology" disabled' in html
    assert "no-reply" in html.lower() or "noreply" in html.lower()


def test_a_manager_sees_the_gate_but_cannot_send(client, manager, world):
    client.force_login(manager)
    html = client.get(url("incident-detail", world.incident)).content.decode()
    assert 'id="send-apology" disabled' in html
    assert client.post(url("apology-send", world.incident),
                       {"confirm": "on", "expected_count": 7}).status_code == 403


def test_sending_needs_the_confirmation(client, marketer, world):
    client.force_login(marketer)
    response = client.post(url("apology-send", world.incident), {"expected_count": 7},
                           follow=True)
    assert "Tick the confirmation" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_marketer_sends_and_sees_progress(client, marketer, world,
                                          django_capture_on_commit_callbacks):
    client.force_login(marketer)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url("apology-send", world.incident),
                               {"confirm": "on", "expected_count": 7})
    assert response.status_code == 302 and response["Location"].endswith("#send-gate")
    assert len(callbacks) == 1  # the fan-out is enqueued after commit
    broadcast = Broadcast.objects.get()
    assert broadcast.recipient_count == 7 and broadcast.status == BroadcastStatus.SENDING
    html = client.get(url("incident-detail", world.incident)).content.decode()
    assert 'id="send-bar" max="7" value="0"' in html
    assert 'hx-trigger="every 2s"' in html and 'id="send-pause"' in html


def test_an_htmx_send_redirects_the_whole_page(client, marketer, world):
    client.force_login(marketer)
    response = client.post(url("apology-send", world.incident),
                           {"confirm": "on", "expected_count": 7}, **HX)
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"  # the war room reloads with the progress bar


def test_a_stale_count_is_refused(client, marketer, world):
    client.force_login(marketer)
    response = client.post(url("apology-send", world.incident),
                           {"confirm": "on", "expected_count": 8}, follow=True)
    assert "changed since the page was shown" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_progress_fragment_counts_and_stops_polling_when_paused(client, marketer, sending):
    broadcast = Broadcast.objects.get()
    broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk,
                                   adapter=broadcasts.default_adapter())
    client.force_login(marketer)
    html = client.get(url("apology-send-progress", sending.incident), **HX).content.decode()
    assert html.lstrip().startswith('<div class="send-progress"')
    assert 'id="send-count-sent">3<' in html and 'id="send-count-remaining">4<' in html
    assert 'hx-trigger="every 2s"' in html
    paused = client.post(url("apology-send-pause", sending.incident), **HX).content.decode()
    assert "no further batch starts" in paused and 'id="send-resume"' in paused
    assert 'hx-trigger="every 2s"' not in paused
    assert Broadcast.objects.get().status == BroadcastStatus.PAUSED
    resumed = client.post(url("apology-send-resume", sending.incident), **HX).content.decode()
    assert 'id="send-pause"' in resumed
    events = list(sending.incident.events.values_list("message", flat=True))
    assert any("paused the apology: no further batch starts (0 already at the ESP" in m
               for m in events)
    assert any("resumed sending the apology" in m for m in events)


def test_progress_without_htmx_goes_back_to_the_war_room(client, marketer, sending):
    client.force_login(marketer)
    response = client.get(url("apology-send-progress", sending.incident))
    assert response.status_code == 302


def test_in_doubt_rows_are_listed_with_decisions(client, marketer, sending):
    broadcast = Broadcast.objects.get()
    broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="dead")
    broadcasts.deliveries_mark_abandoned(broadcast_id=broadcast.pk, grace=0)
    doubt = Delivery.objects.filter(state=DeliveryState.IN_DOUBT).order_by("id").first()
    client.force_login(marketer)
    html = client.get(url("apology-send-progress", sending.incident), **HX).content.decode()
    assert f'id="in-doubt-{doubt.pk}"' in html and doubt.email in html
    assert 'id="send-reconcile"' in html
    response = client.post(url("apology-send-decide", sending.incident, doubt.pk),
                           {"decision": "drop"}, **HX)
    assert "Decision recorded" in response.content.decode()
    doubt.refresh_from_db()
    assert doubt.state == DeliveryState.FAILED and doubt.decided_by == marketer
    again = client.post(url("apology-send-decide", sending.incident, doubt.pk),
                        {"decision": "resend"}, **HX).content.decode()
    assert "Only a message in doubt" in again


def test_pause_when_not_sending_says_why(client, marketer, world):
    client.force_login(marketer)
    html = client.post(url("apology-send-pause", world.incident), **HX).content.decode()
    assert "has not been sent yet" in html


@pytest.mark.parametrize("name,args,data", [
    ("apology-send", (), {"confirm": "on", "expected_count": 7}),
    ("apology-send-pause", (), {}),
    ("apology-send-resume", (), {}),
    ("apology-send-reconcile", (), {}),
    ("apology-send-decide", (1,), {"decision": "drop"}),
])
def test_write_views_per_role(client, world, marketer, manager, outsider, lawyer, name, args,
                              data):
    world.incident.restricted = True
    world.incident.save(update_fields=["restricted"])
    stakeholder_add(incident=world.incident, actor=marketer, user=lawyer, role="legal")
    target = url(name, world.incident, *args)
    client.force_login(manager)
    assert client.post(target, data).status_code == 403
    client.force_login(outsider)
    assert client.post(target, data).status_code == 404
    client.force_login(lawyer)
    assert client.get(target).status_code == 405
    assert client.post(target, data).status_code in (302, 200)
    client.logout()
    assert client.post(target, data).status_code == 302  # to the login page


def test_progress_per_role(client, sending, manager, outsider, marketer):
    sending.incident.restricted = True
    sending.incident.save(update_fields=["restricted"])
    target = url("apology-send-progress", sending.incident)
    client.force_login(manager)
    html = client.get(target, **HX).content.decode()
    assert 'id="send-bar"' in html and 'id="send-pause"' not in html  # read-only
    client.force_login(outsider)
    assert client.get(target, **HX).status_code == 404
    assert client.post(target, **HX).status_code == 405


def test_progress_fragment_says_its_state_in_tenths_for_screen_readers(client, marketer,
                                                                        sending):
    """Issue 14: the swapped bar is no live region; it carries the sentence the page's polite
    region says when it changes: the status and whole tenths, never 100 % before the end."""
    broadcasts.broadcast_run_batch(broadcast_id=Broadcast.objects.get().pk,
                                   adapter=broadcasts.default_adapter())
    client.force_login(marketer)
    html = client.get(url("apology-send-progress", sending.incident), **HX).content.decode()
    assert 'data-announce="Apology send: Sending, 40% done."' in html  # 3 of 7 is 43 %
    assert "aria-live" not in html


@pytest.mark.parametrize(("done", "total", "said"),
                         [(0, 0, 0), (3, 7, 40), (999, 1000, 90), (1000, 1000, 100)])
def test_the_announced_percentage_is_whole_tenths_and_100_only_at_the_end(done, total, said):
    assert SendProgress(broadcast=None, total=total, sent=done).percent_announced == said
