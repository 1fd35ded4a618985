"""Loopback ESPs that the Celery worker process can reach, named in its environment.

The worker (tests/conftest.py `celery_worker`) is a separate process that reads ESP
credentials from the environment at start-up (settings.AMENDS_ESP_ACCOUNTS), as in
production. Importing this module starts the servers and sets AMENDS_ESP_ACCOUNT_* for
them; test modules import it at their top, and pytest imports every test module before
the first test runs — so before the session's worker copies the environment, whichever
test starts it. Tests share the servers: use campaign ids of your own.
"""

import atexit
import os

from .esps import MailchimpLoopback

MAILCHIMP_LABEL = "Worker Mailchimp"
MAILCHIMP = MailchimpLoopback().start()
atexit.register(MAILCHIMP.stop)
os.environ["AMENDS_ESP_ACCOUNT_WORKER_MAILCHIMP_API_KEY"] = MAILCHIMP.api_key
os.environ["AMENDS_ESP_ACCOUNT_WORKER_MAILCHIMP_BASE_URL"] = MAILCHIMP.url
