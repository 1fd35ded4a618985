"""Issue 9: the sign-in throttle protects without locking people out.

Both attacks from the issue, replayed through the real login page."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/accounts/login/"
HERE, ELSEWHERE = "203.0.113.7", "198.51.100.20"


def attempt(username: str, password: str, ip: str = HERE, **meta):
    return Client().post(reverse("accounts:login"), {"username": username,
                                                     "password": password},
                         REMOTE_ADDR=ip, **meta)


def locked(response) -> bool:
    return (response.status_code == 429
            and "Too many sign-in attempts" in response.content.decode())


def test_a_good_login_as_someone_else_never_clears_my_failures(marketer, lawyer):
    # The issue: 4 wrong guesses for one user, 1 good login as another, repeat.
    responses = []
    for _round in range(4):
        for _ in range(4):
            responses.append(attempt("maya", "wrong"))
        assert attempt("leo", PASSWORD).status_code == 302
    assert any(locked(r) for r in responses)
    # The 5th failure reaches the limit and is answered with the lock (round two).
    assert sum(not locked(r) for r in responses) == 4
    assert locked(attempt("maya", PASSWORD))  # even the right password waits now


def test_a_locked_user_still_signs_in_from_another_address(lawyer):
    # The issue: 5 wrong passwords kept legal out from every IP.
    for _ in range(5):
        attempt("leo", "wrong", ip=HERE)
    assert locked(attempt("leo", PASSWORD, ip=HERE))
    assert attempt("leo", PASSWORD, ip=ELSEWHERE).status_code == 302


def test_one_address_guessing_many_usernames_is_locked(marketer, settings):
    settings.AMENDS_LOGIN_IP_USERNAME_LIMIT = 10
    for i in range(10):
        assert attempt(f"user{i}", "Spring2026!").status_code == 200
    refused = attempt("maya", PASSWORD)
    assert locked(refused)
    # The same person from their own network is not affected.
    assert attempt("maya", PASSWORD, ip=ELSEWHERE).status_code == 302


def test_a_success_from_the_spraying_address_does_not_reset_it(marketer, lawyer, settings):
    settings.AMENDS_LOGIN_IP_USERNAME_LIMIT = 3
    attempt("user1", "x")
    attempt("user2", "x")
    assert attempt("leo", PASSWORD).status_code == 302
    attempt("user3", "x")
    assert locked(attempt("maya", PASSWORD))


def test_a_forwarded_header_is_ignored_unless_configured(lawyer):
    # Spoofing X-Forwarded-For from one address does not earn fresh attempts.
    for i in range(5):
        attempt("leo", "wrong", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}")
    assert locked(attempt("leo", PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.99"))


def test_behind_a_trusted_proxy_the_configured_header_names_the_client(lawyer, settings):
    settings.AMENDS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.AMENDS_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for _ in range(5):
        # A forged first entry changes nothing: the proxy's own entry is the last one.
        attempt("leo", "wrong", ip=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {HERE}")
    assert locked(attempt("leo", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=HERE))
    # Another client behind the same proxy signs in.
    assert attempt("leo", PASSWORD, ip=proxy,
                   HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 302
