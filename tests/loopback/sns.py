"""Amazon SNS as seen by an HTTPS subscriber: a signing certificate the test makes,
served at a SigningCertURL, and messages signed with its key (SignatureVersion 1 or 2).

The same server answers the EC2 instance metadata paths (/latest/...) with 404, so a test
that points botocore's metadata endpoint here can prove nobody asked it anything.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .server import LoopbackServer, Reply

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                 "Token", "TopicArn", "Type"),
}
CERT_PATH = "/SimpleNotificationService-loopback.pem"


def make_certificate(key: rsa.RSAPrivateKey, common_name: str = "sns.amazonaws.com"
                     ) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


class SnsLoopback(LoopbackServer):
    name = "sns"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = make_certificate(self.key).public_bytes(serialization.Encoding.PEM).decode()
        super().__init__()

    def setup_routes(self) -> None:
        self.route("GET", CERT_PATH, lambda call, match: Reply(200, self.pem))
        self.route("GET", r"/latest/.*", lambda call, match: Reply(404, "no metadata here"))
        self.route("PUT", r"/latest/.*", lambda call, match: Reply(404, "no metadata here"))

    @property
    def cert_url(self) -> str:
        return self.url + CERT_PATH

    @property
    def cert_url_pattern(self) -> str:
        """What AMAZON_SNS_CERT_URL_PATTERN is set to while this server stands in for SNS."""
        return r"^http://127\.0\.0\.1:\d+/SimpleNotificationService-[\w-]+\.pem$"

    def sign(self, message: dict, *, version: str = "1", key: rsa.RSAPrivateKey | None = None
             ) -> dict:
        """The message with SignatureVersion, SigningCertURL and Signature set."""
        message = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        text = "".join(f"{k}\n{message[k]}\n" for k in _SIGNED_FIELDS[message["Type"]]
                       if k in message).encode()
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.key).sign(text, padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    def metadata_calls(self) -> list:
        return [c for c in self.calls if c.path.startswith("/latest/")]

    def cert_fetches(self) -> list:
        return self.calls_to("GET", CERT_PATH)
