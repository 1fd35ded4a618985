import random

import pytest

from messaging.esp.base import EspTemporaryError
from messaging.esp.httpclient import EspHttpClient, RetryPolicy, describe, parse_retry_after
from tests.loopback.esps import SparkPostLoopback

from .helpers import FakeSleep


@pytest.fixture
def server():
    with SparkPostLoopback(api_key="k") as s:
        yield s


def client_for(server, sleep, **retry):
    return EspHttpClient(provider="sparkpost", base_url=server.url, headers={"Authorization": "k"},
                         retry=RetryPolicy(**{"max_attempts": 4, "base_delay": 1.0,
                                              "max_delay": 8.0, **retry}),
                         sleep=sleep, rng=random.Random(1))


def test_retries_5xx_with_exponential_backoff_then_succeeds(server):
    sleep = FakeSleep()
    server.fail_next(500)
    server.fail_next(503)
    response = client_for(server, sleep).request("DELETE", "/api/v1/transmissions",
                                                 params={"campaign_id": "c"})
    assert response.status == 204 and response.attempts == 3
    assert [c.status for c in server.calls] == [500, 503, 204]
    # full jitter within [ceiling/2, ceiling], ceiling doubling from base_delay
    assert 0.5 <= sleep.delays[0] <= 1.0 and 1.0 <= sleep.delays[1] <= 2.0


def test_honours_retry_after_on_429(server):
    sleep = FakeSleep()
    server.fail_next(429, retry_after="3")
    client_for(server, sleep).request("DELETE", "/api/v1/transmissions",
                                      params={"campaign_id": "c"})
    assert sleep.delays == [3.0]


def test_gives_up_after_max_attempts_with_a_clear_error(server):
    sleep = FakeSleep()
    server.fail_next(503, times=10)
    with pytest.raises(EspTemporaryError) as info:
        client_for(server, sleep).request("DELETE", "/api/v1/transmissions",
                                          params={"campaign_id": "c"})
    err = info.value
    assert err.attempts == 4 and err.http_status == 503 and err.provider == "sparkpost"
    assert "still failing after 4 attempts" in str(err) and "HTTP 503" in str(err)
    assert len(server.calls) == 4 and len(sleep.delays) == 3


def test_a_long_retry_after_is_handed_to_the_caller_instead_of_waited(server):
    sleep = FakeSleep()
    server.fail_next(429, retry_after="600")
    with pytest.raises(EspTemporaryError) as info:
        client_for(server, sleep).request("DELETE", "/api/v1/transmissions",
                                          params={"campaign_id": "c"})
    assert info.value.retry_after == 600.0 and sleep.delays == [] and len(server.calls) == 1


def test_network_errors_are_retried_then_reported():
    sleep = FakeSleep()
    client = EspHttpClient(provider="x", base_url="http://127.0.0.1:9", sleep=sleep,
                           retry=RetryPolicy(max_attempts=2, base_delay=0.1), timeout=0.5)
    with pytest.raises(EspTemporaryError, match="network error"):
        client.request("GET", "/")
    assert len(sleep.delays) == 1


def test_client_errors_are_returned_not_retried(server):
    sleep = FakeSleep()
    response = client_for(server, sleep).request("DELETE", "/api/v1/transmissions")
    assert response.status == 400 and sleep.delays == []
    assert describe(response.body) == "required query parameter missing: campaign_id is required"


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
