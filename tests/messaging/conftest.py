# The loopback ESP fixtures. pytest ignores `pytest_plugins` outside the root conftest, so
# they are imported here by name.
from tests.loopback.fixtures import (  # noqa: F401
    brevo_esp,
    klaviyo_esp,
    mailchimp_esp,
    postmark_esp,
    sendgrid_esp,
    sparkpost_esp,
)

# Issue 4, send: a Celery worker that can be SIGKILLed and restarted, and its loopback ESP.
from tests.messaging.send_worker import send_esp, send_worker  # noqa: E402, F401
