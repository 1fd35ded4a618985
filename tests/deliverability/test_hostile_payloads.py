"""Content never causes a 500: what can be stored is stored (repaired and counted), and
only what cannot be parsed at all is refused with 400."""

import json

import pytest

from deliverability import services
from deliverability.models import DeliveryEvent, RawDeliveryBatch, RawDeliveryEvent

from . import payloads as p
from .test_webhooks import MAILGUN, POSTMARK, SANDBOX, SENDGRID

pytestmark = pytest.mark.django_db


def _post(client, url, body, **headers):
    response = p.post_json(client, url, body, **headers)
    assert response.status_code == 200, response.content
    return response


def _no_nul(value) -> bool:
    return "\x00" not in json.dumps(value) and "\\u0000" not in json.dumps(value)


def test_nul_bytes_in_any_field_are_stripped_counted_and_the_batch_kept(client, storage_path,
                                                                         caplog):
    batch = [
        p.sendgrid_event("delivered", email="fine@example.com", sg_event_id="n0"),
        p.sendgrid_event("bounce", email="ann\x00@example.com", sg_event_id="n1\x00",
                         reason="550 user\x00 unknown", broadcast_id="7\x00"),
        p.sendgrid_event("spamreport", email="bob@example.com", sg_event_id="n2",
                         **{"campaign_id": "spring\x00", "odd\x00key": ["a\x00b", {"c": "\x00"}]}),
    ]
    caplog.set_level("WARNING", logger="deliverability.views")
    _post(client, SENDGRID, batch)
    rows = {r.event_id: r for r in RawDeliveryEvent.objects.all()}
    assert set(rows) == {"n0", "n1", "n2"}
    assert rows["n1"].recipient == "ann@example.com"
    assert rows["n1"].mta_response == "550 user unknown"
    assert rows["n2"].campaign_key == "spring"
    assert rows["n2"].esp_event["oddkey"] == ["ab", {"c": ""}]
    for row in rows.values():
        assert _no_nul(row.esp_event) and _no_nul(row.metadata)
    assert rows["n0"].repairs == {}
    assert rows["n1"].repairs["nul"] >= 3 and rows["n2"].repairs["nul"] >= 3
    assert RawDeliveryBatch.objects.get().repairs["nul"] == (
        rows["n1"].repairs["nul"] + rows["n2"].repairs["nul"])
    assert any("repaired" in r.getMessage() for r in caplog.records)
    services.delivery_events_normalise()
    assert sorted(DeliveryEvent.objects.values_list("recipient", "kind")) == [
        ("ann@example.com", "bounced_hard"), ("bob@example.com", "complained"),
        ("fine@example.com", "delivered")]


@pytest.mark.parametrize("url", [POSTMARK, SANDBOX])
def test_nul_bytes_never_cost_a_500_on_other_esps(client, url):
    if url == POSTMARK:
        body = p.postmark_bounce(email="ann\x00@example.com", metadata={"k\x00": "v\x00"})
    else:
        body = [p.sandbox_event("bounced_hard", recipient="ann@exa\x00mple.com",
                                description="bad\x00", metadata={"campaign_id": "x\x00"})]
    _post(client, url, body)
    row = RawDeliveryEvent.objects.get()
    assert row.recipient == "ann@example.com" and row.repairs["nul"] >= 2


@pytest.mark.parametrize("timestamp", ["Infinity", "-Infinity", "NaN", "1e30", "1e12",
                                       "99999999999999999999999"])
def test_impossible_sendgrid_timestamps_are_nulled_and_the_original_kept(client, timestamp):
    good = json.dumps(p.sendgrid_event("delivered", email="ok@example.com", sg_event_id="t0"))
    bad = json.dumps(p.sendgrid_event("bounce", sg_event_id="t1")).replace(
        f'"timestamp": {p.EPOCH}', f'"timestamp": {timestamp}')
    assert timestamp in bad
    _post(client, SENDGRID, f"[{good}, {bad}]")
    row = RawDeliveryEvent.objects.get(event_id="t1")
    assert row.occurred_at is None
    assert row.repairs["timestamp"] == 1
    assert row.repairs["original_timestamp"]  # the value itself may not fit in jsonb
    assert RawDeliveryEvent.objects.get(event_id="t0").occurred_at is not None
    services.delivery_events_normalise()
    event = DeliveryEvent.objects.get(event_id="t1")
    # No trustworthy time: the moment we received it stands in.
    assert event.occurred_at == row.batch.received_at and event.kind == "bounced_hard"


def test_a_far_future_timestamp_that_parses_is_still_impossible(client):
    _post(client, SENDGRID, [p.sendgrid_event(sg_event_id="f1", timestamp=32503680000)])
    row = RawDeliveryEvent.objects.get()
    assert row.occurred_at is None and row.repairs["timestamp"] == 1
    assert row.esp_event["timestamp"] == 32503680000  # the original stays in the raw row


def test_mailgun_1e20_timestamp_is_stored(client, mailgun_signing_key):
    payload = p.mailgun_event()
    payload["event-data"]["timestamp"] = 1e20
    _post(client, MAILGUN, payload)
    row = RawDeliveryEvent.objects.get()
    assert row.occurred_at is None and row.repairs["timestamp"] == 1
    assert row.esp_event["event-data"]["timestamp"] == 1e20
    services.delivery_events_normalise()
    assert DeliveryEvent.objects.get().kind == "bounced_hard"


def test_sandbox_infinite_timestamp_is_stored(client):
    body = json.dumps([p.sandbox_event("complained")]).replace(
        f'"{p.WHEN.isoformat()}"', "1e30")
    _post(client, SANDBOX, body)
    assert RawDeliveryEvent.objects.get().repairs["timestamp"] == 1


def _nested(depth: int, leaf: str = '"x"') -> str:
    return "[" * depth + leaf + "]" * depth


def test_ten_thousand_deep_custom_arg_is_cut_and_the_batch_stored(client):
    good = json.dumps(p.sendgrid_event("delivered", email="ok@example.com", sg_event_id="d0"))
    deep = json.dumps(p.sendgrid_event("bounce", sg_event_id="d1", deep="HOLE"))
    body = f'[{good}, {deep.replace(chr(34) + "HOLE" + chr(34), _nested(10_000))}]'
    _post(client, SENDGRID, body)
    assert RawDeliveryEvent.objects.count() == 2
    row = RawDeliveryEvent.objects.get(event_id="d1")
    assert row.recipient == "ann@example.com" and row.kind == "bounced_hard"
    assert RawDeliveryBatch.objects.get().repairs["depth"] == 1
    # What is kept is a bounded prefix of the nesting, ending in a marker string.
    inner, levels = row.esp_event["deep"], 1
    while isinstance(inner, list):
        inner, levels = inner[0], levels + 1
    assert "nested deeper" in inner and levels < 300


def test_deep_nesting_inside_a_signed_mailgun_event_still_verifies(client,
                                                                   mailgun_signing_key):
    payload = p.mailgun_event(user_variables={"deep": "HOLE"})
    body = json.dumps(payload).replace('"HOLE"', _nested(10_000))
    _post(client, MAILGUN, body)
    assert RawDeliveryEvent.objects.get().kind == "bounced_hard"


@pytest.mark.parametrize("url", [SENDGRID, SANDBOX, POSTMARK])
def test_a_body_that_is_only_nesting_is_400_not_500(client, url):
    response = p.post_json(client, url, _nested(10_000, ""))
    assert response.status_code == 400
    assert not RawDeliveryEvent.objects.exists()


def test_lone_surrogates_are_replaced_not_a_500(client):
    body = json.dumps([p.sandbox_event("delivered", description="x")]).replace(
        '"description": "x"', '"description": "bad \\ud800 text", "metadata": {"k": "\\udfff"}')
    _post(client, SANDBOX, body)
    row = RawDeliveryEvent.objects.get()
    assert row.description.startswith("bad ") and row.repairs["unicode"] >= 2


def test_cutting_deep_nesting_leaves_brackets_inside_strings_alone():
    from deliverability.repair import DEPTH_MARKER, cut_deep_nesting

    text = '{"a": "[[[{{{\\"]]]", "b": ' + _nested(5, '"x"') + "}"
    cut, n = cut_deep_nesting(text, max_depth=3)
    assert n == 1
    assert json.loads(cut) == {"a": '[[[{{{"]]]', "b": [[DEPTH_MARKER]]}
    assert cut_deep_nesting(text, max_depth=10) == (text, 0)


@pytest.mark.parametrize("esp", ["brevo", "sparkpost"])
def test_impossible_timestamps_are_repaired_for_other_esps_too(client, esp):
    if esp == "brevo":
        body = json.dumps(p.brevo_event(ts_epoch=0)).replace('"ts_epoch": 0', '"ts_epoch": 1e30')
    else:
        body = json.dumps([p.sparkpost_event()]).replace(f'"timestamp": "{p.EPOCH}"',
                                                         '"timestamp": "1e400"')
    _post(client, f"/webhooks/{esp}/tracking/", body)
    row = RawDeliveryEvent.objects.get()
    assert row.occurred_at is None and row.repairs["timestamp"] == 1
    assert row.kind == "bounced_hard"
