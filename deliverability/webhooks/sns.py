"""Amazon SNS message signatures (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA).

SNS signs a canonical string built from some of the message's fields ("Key\\nValue\\n",
in the documented order) with the key of the X.509 certificate at SigningCertURL. That URL
must be HTTPS on an SNS host (sns.<region>.amazonaws.com, .com.cn in China): anyone can
publish a certificate elsewhere and sign with it. The rule is the setting
AMAZON_SNS_CERT_URL_PATTERN (tests point it at a loopback server). Certificates are
cached in the process and in the shared cache, so verifying costs no request per post.
"""

import base64
import binascii
import hashlib
import logging
import re
import threading
import time
from datetime import UTC, datetime

import requests
from anymail.exceptions import AnymailWebhookValidationFailure
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                 "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                "Token", "TopicArn", "Type"),
}
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_CACHE_KEY = "deliverability:sns-cert:{}"
FETCH_TIMEOUT_S = 5.0


class SnsCertificateUnavailable(Exception):
    """The signing certificate could not be fetched: our problem, not the sender's."""


def trusted_cert_url(url: object) -> bool:
    return isinstance(url, str) and re.fullmatch(settings.AMAZON_SNS_CERT_URL_PATTERN,
                                                 url) is not None


def string_to_sign(message: dict) -> bytes:
    fields = _SIGNED_FIELDS[message["Type"]]
    return "".join(f"{name}\n{message[name]}\n" for name in fields
                   if name in message).encode()


_local: dict[str, tuple[float, x509.Certificate]] = {}
_local_lock = threading.Lock()


def _fetch_pem(url: str) -> str:
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as exc:
        raise SnsCertificateUnavailable(f"cannot fetch SNS signing certificate {url}: {exc}"
                                        ) from exc
    if response.status_code != 200:
        raise SnsCertificateUnavailable(
            f"SNS signing certificate {url} answered HTTP {response.status_code}")
    return response.text


def signing_certificate(url: str) -> x509.Certificate:
    ttl = settings.AMAZON_SNS_CERT_CACHE_SECONDS
    now = time.monotonic()
    with _local_lock:
        hit = _local.get(url)
    if hit and hit[0] > now:
        return hit[1]
    key = CERT_CACHE_KEY.format(hashlib.sha256(url.encode()).hexdigest())
    pem = cache.get(key)
    if pem is None:
        pem = _fetch_pem(url)
        cache.set(key, pem, timeout=ttl)
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        cache.delete(key)
        raise AnymailWebhookValidationFailure(f"SigningCertURL {url} is not a PEM certificate"
                                              ) from exc
    with _local_lock:
        _local[url] = (now + ttl, certificate)
    return certificate


def forget_certificates() -> None:
    with _local_lock:
        _local.clear()


def sns_signature_verify(message: dict) -> None:
    """Raise AnymailWebhookValidationFailure unless SNS signed this message."""
    version = message.get("SignatureVersion")
    if version not in _HASHES:
        raise AnymailWebhookValidationFailure(
            f"SNS SignatureVersion {version!r} is not supported (1 or 2)")
    if message.get("Type") not in _SIGNED_FIELDS:
        raise AnymailWebhookValidationFailure(f"SNS message Type {message.get('Type')!r}")
    url = message.get("SigningCertURL")
    if not trusted_cert_url(url):
        raise AnymailWebhookValidationFailure(
            f"SNS SigningCertURL {str(url)[:200]!r} is not on an SNS host "
            "(AMAZON_SNS_CERT_URL_PATTERN)")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        signed = string_to_sign(message)
    except (binascii.Error, ValueError, KeyError) as exc:
        raise AnymailWebhookValidationFailure(f"SNS signature is malformed: {exc}") from exc
    certificate = signing_certificate(url)
    if not (certificate.not_valid_before_utc <= datetime.now(UTC)
            <= certificate.not_valid_after_utc):
        raise AnymailWebhookValidationFailure("SNS signing certificate is not valid now")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AnymailWebhookValidationFailure("SNS signing certificate is not an RSA key")
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), _HASHES[version]())
    except InvalidSignature as exc:
        raise AnymailWebhookValidationFailure("SNS message signature does not match") from exc
