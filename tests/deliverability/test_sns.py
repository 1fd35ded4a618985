"""Amazon SES through SNS: signatures verified on a certificate the test makes, the
certificate URL held to SNS hosts, and subscriptions that never probe for credentials."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from deliverability.models import RawDeliveryEvent, SnsSubscriptionConfirmation
from deliverability.webhooks import sns as sns_module

from . import payloads as p
from .test_webhooks import SES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_notifications_are_accepted_for_both_signature_versions(client, sns, version):
    body, headers = p.sns_notification(p.ses_bounce_message(), version=version)
    response = p.post_json(client, SES, body, **headers)
    assert response.status_code == 200, response.content
    assert RawDeliveryEvent.objects.get().kind == "bounced_hard"


def test_a_tampered_message_is_refused(client, sns):
    body, headers = p.sns_notification(p.ses_bounce_message("Transient"))
    body["Message"] = json.dumps(p.ses_complaint_message())
    response = p.post_json(client, SES, body, **headers)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_a_signature_by_another_key_is_refused(client, sns):
    body, headers = p.sns_notification(p.ses_bounce_message())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = sns.sign(body, key=stranger)
    assert p.post_json(client, SES, body, **headers).status_code == 403
    assert not RawDeliveryEvent.objects.exists()


@pytest.mark.parametrize("version", ["", "3", None])
def test_an_unknown_signature_version_is_refused(client, sns, version):
    body, headers = p.sns_notification(p.ses_bounce_message())
    body["SignatureVersion"] = version
    assert p.post_json(client, SES, body, **headers).status_code == 403


def test_a_certificate_off_the_trusted_hosts_is_never_fetched(client, sns, settings):
    settings.AMAZON_SNS_CERT_URL_PATTERN = r"^http://127\.0\.0\.1:1/nothing\.pem$"
    body, headers = p.sns_notification(p.ses_bounce_message())
    assert p.post_json(client, SES, body, **headers).status_code == 403
    assert sns.cert_fetches() == []


@pytest.mark.parametrize("url,trusted", [
    ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
    ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
    ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", False),
    ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
    ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
    ("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", False),
    ("https://s3.amazonaws.com/SimpleNotificationService-abc.pem", False),
    ("https://sns.us-east-1.amazonaws.com/x.pem\n", False),
    ("https://sns.us-east-1.amazonaws.com/x.pem?.pem", False),
])
def test_the_production_rule_allows_only_https_sns_hosts(settings, url, trusted):
    from config import settings as defaults

    settings.AMAZON_SNS_CERT_URL_PATTERN = defaults.AMAZON_SNS_CERT_URL_PATTERN
    assert sns_module.trusted_cert_url(url) is trusted


def test_the_certificate_is_fetched_once_and_cached(client, sns):
    for n in range(3):
        body, headers = p.sns_notification(p.ses_bounce_message(), message_id=f"m-{n}")
        assert p.post_json(client, SES, body, **headers).status_code == 200
    assert len(sns.cert_fetches()) == 1
    sns_module.forget_certificates()  # another process: the shared cache still has it
    body, headers = p.sns_notification(p.ses_bounce_message(), message_id="m-3")
    assert p.post_json(client, SES, body, **headers).status_code == 200
    assert len(sns.cert_fetches()) == 1


def test_an_unreachable_certificate_is_503_so_sns_retries(client, sns, settings):
    settings.AMAZON_SNS_CERT_URL_PATTERN = r"^http://127\.0\.0\.1:\d+/.*\.pem$"
    body, headers = p.sns_notification(p.ses_bounce_message())
    body["SigningCertURL"] = sns.url + "/SimpleNotificationService-gone.pem"
    response = p.post_json(client, SES, body, **headers)
    assert response.status_code == 503
    assert not RawDeliveryEvent.objects.exists()


@pytest.fixture
def no_aws_credentials(monkeypatch, sns, tmp_path):
    """No credentials anywhere, and botocore's metadata endpoint pointed at the loopback
    server, so any probe for credentials would be recorded there."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", sns.url + "/")
    monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")


def test_subscription_without_aws_credentials_is_a_clear_error_recorded_and_never_probes(
        client, sns, no_aws_credentials):
    body, headers = p.sns_subscription_confirmation()
    response = p.post_json(client, SES, body, **headers)
    assert response.status_code == 403
    assert b"no AWS credentials are configured" in response.content
    assert sns.metadata_calls() == []
    record = SnsSubscriptionConfirmation.objects.get()
    assert record.outcome == "not_confirmed"
    assert record.topic_arn == "arn:aws:sns:us-east-1:123456789012:ses-events"
    assert record.subscribe_url == body["SubscribeURL"]
    assert "no AWS credentials" in record.error


def test_an_unsigned_subscription_confirmation_is_refused_before_anything(client, sns,
                                                                          no_aws_credentials):
    body, headers = p.sns_subscription_confirmation()
    body["Signature"] = "AAAA"
    assert p.post_json(client, SES, body, **headers).status_code == 403
    assert not SnsSubscriptionConfirmation.objects.exists()
