"""Amazon SES events through SNS: signatures verified, subscriptions confirmed safely.

anymail 13 does not verify SNS signatures; here every message must carry a valid one
(sns.py) on top of the basic-auth secret. For a SubscriptionConfirmation anymail calls
boto3's ConfirmSubscription, and without configured AWS credentials botocore looks for
them at the cloud metadata address before failing (a 500 after a delay, and a request to
169.254.169.254 from our server). We confirm only when credentials are configured
explicitly, never let botocore go looking, and record every confirmation either way with
its SubscribeURL, so an operator can confirm by hand.
"""

import logging
import os
from pathlib import Path

from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from django.http import HttpRequest

from ..models import SnsSubscriptionConfirmation
from .sns import sns_signature_verify

log = logging.getLogger(__name__)

_CREDENTIAL_PARAMS = ("aws_access_key_id", "profile_name", "botocore_session")
_CREDENTIAL_ENVIRONMENT = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI")


class WebhookNotConfigured(Exception):
    """The request is fine but this server cannot act on it; the message says why."""


def aws_credentials_configured(*, session_params: dict, client_params: dict) -> bool:
    """True when AWS credentials are set where botocore finds them before the metadata
    service: anymail's boto3 parameters, the environment, or a shared credentials file."""
    if any(params.get(name) for params in (session_params, client_params)
           for name in _CREDENTIAL_PARAMS):
        return True
    if any(os.environ.get(name) for name in _CREDENTIAL_ENVIRONMENT):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return Path(shared).expanduser().is_file()


def _record(sns_message: dict, outcome: str, error: str = "") -> None:
    SnsSubscriptionConfirmation.objects.create(
        topic_arn=str(sns_message.get("TopicArn", ""))[:256],
        message_id=str(sns_message.get("MessageId", ""))[:100],
        subscribe_url=str(sns_message.get("SubscribeURL", ""))[:2000],
        outcome=outcome, error=error)


class AmazonSESTrackingView(AmazonSESTrackingWebhookView):
    replaces = AmazonSESTrackingWebhookView

    # anymail runs every validate_request in the MRO, subclass first; the signature (which
    # may fetch a certificate) is checked only after basic auth and the header checks.
    def run_validators(self, request: HttpRequest) -> None:
        super().run_validators(request)
        sns_signature_verify(self._parse_sns_message(request))

    def auto_confirm_sns_subscription(self, sns_message: dict) -> None:
        not_confirmed = SnsSubscriptionConfirmation.Outcome.NOT_CONFIRMED
        topic = sns_message.get("TopicArn")
        if not self.auto_confirm_enabled:
            _record(sns_message, not_confirmed, "automatic confirmation is turned off "
                    "(AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS=false)")
            log.warning("SNS subscription to %s not confirmed: automatic confirmation is "
                        "off; confirm it by hand", topic)
            return
        if not aws_credentials_configured(session_params=self.session_params,
                                          client_params=self.client_params):
            error = (f"SNS subscription to topic {topic} was not confirmed: no AWS "
                     "credentials are configured for Amends (AWS_ACCESS_KEY_ID, AWS_PROFILE, "
                     "or ANYMAIL AMAZON_SES_SESSION_PARAMS). Confirm it by hand with the "
                     "SubscribeURL recorded under Deliverability > SNS subscription "
                     "confirmations, or configure credentials and let SNS retry.")
            _record(sns_message, not_confirmed, error)
            log.error("%s", error)
            raise WebhookNotConfigured(error)
        try:
            super().auto_confirm_sns_subscription(sns_message)
        except Exception as exc:  # botocore's errors: recorded, then a clear answer
            error = f"SNS subscription to topic {topic} was not confirmed: {exc}"
            _record(sns_message, not_confirmed, error[:2000])
            log.exception("SNS subscription confirmation failed")
            raise WebhookNotConfigured(error) from exc
        _record(sns_message, SnsSubscriptionConfirmation.Outcome.CONFIRMED)
