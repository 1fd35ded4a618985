"""The loopback ESPs themselves: fault injection, recording, concurrency, duplicates."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import requests

from messaging.esp.anymail_sender import AnymailSender
from messaging.esp.base import OutgoingMessage, RecipientStatus
from tests.loopback import FaultPlan
from tests.loopback.esps import PostmarkLoopback, SendGridLoopback

from .helpers import quick


def statuses(server, n):
    session = requests.Session()
    return [session.delete(f"{server.url}/api/v1/transmissions?campaign_id=x",
                           headers={"Authorization": server.api_key}).status_code
            for _ in range(n)]


def test_faults_are_deterministic_by_seed_and_near_the_rate(sparkpost_esp):
    sparkpost_esp.set_faults(0.3, seed=11)
    first = statuses(sparkpost_esp, 200)
    sparkpost_esp.set_faults(0.3, seed=11)
    assert statuses(sparkpost_esp, 200) == first
    faults = [s for s in first if s != 204]
    assert set(faults) <= {429, 500, 503} and 40 <= len(faults) <= 80
    retry_after = [c for c in sparkpost_esp.calls if c.status == 429]
    assert retry_after and all(c.fault for c in retry_after)


def test_fault_plan_can_target_paths():
    plan = FaultPlan(rate=1.0, paths="/email/batch")
    assert plan.pick("/messages/outbound") is None and plan.pick("/email/batch") in (429, 500,
                                                                                       503)


def test_calls_are_recorded_under_concurrency(sparkpost_esp):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: statuses(sparkpost_esp, 10), range(8)))
    assert len(sparkpost_esp.calls) == 80
    assert {c.header("Authorization") for c in sparkpost_esp.calls} == {sparkpost_esp.api_key}


def test_unknown_paths_and_methods():
    with PostmarkLoopback() as server:
        assert requests.get(f"{server.url}/nope").status_code == 404
        assert requests.delete(f"{server.url}/email/batch").status_code == 405


def test_postmark_counts_duplicates_and_enforces_batch_size():
    with PostmarkLoopback(max_per_call=2) as server:
        sleep, opts = quick()
        sender = AnymailSender(backend="anymail.backends.postmark.EmailBackend",
                               backend_options={"server_token": server.server_token,
                                                "api_url": server.url + "/"},
                               max_per_call=2, sleep=sleep, rng=opts["rng"])
        message = OutgoingMessage(to="a@example.test", subject="s", from_email="f@x.test",
                                  text="t")
        sender.send_batch([message])
        sender.send_batch([message])
        assert server.duplicates() == {"a@example.test": 2}
        too_many = requests.post(f"{server.url}/email/batch", json=[{}] * 3,
                                 headers={"X-Postmark-Server-Token": server.server_token})
        assert too_many.status_code == 422


def test_sendgrid_mail_send_takes_a_thousand_recipients_per_call():
    with SendGridLoopback() as server:
        sleep, opts = quick()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # anymail warns it no longer supports SendGrid
            sender = AnymailSender(backend="anymail.backends.sendgrid.EmailBackend",
                                   backend_options={"api_key": server.api_key,
                                                    "api_url": server.url + "/v3/"},
                                   max_per_call=1000, sleep=sleep, rng=opts["rng"])
            messages = [OutgoingMessage(to=f"p{n}@example.test", subject="s",
                                        from_email="f@x.test", text="Hi -name-",
                                        merge_data={"name": f"P{n}"},
                                        metadata={"broadcast_id": 1, "recipient_id": n})
                        for n in range(1500)]
            results = sender.send_batch(messages)
        assert {r.status for r in results} == {RecipientStatus.QUEUED}
        assert len(server.calls_to("POST", "/v3/mail/send")) == 2
        counts = server.recipient_counts()
        assert len(counts) == 1500 and set(counts.values()) == {1}
        sample = server.deliveries[7]["custom_args"]
        assert sample["recipient_id"] == "7" and sample["anymail_id"] == results[7].message_id
