"""How much the ESP adapter costs over raw batched HTTP, against a loopback Postmark.

    DJANGO_SETTINGS_MODULE=config.settings python bench/esp_send_overhead.py [recipients]

Prints `esp_send_overhead ratio=<adapter rate / raw rate>` and both rates (recipients/s).
Raw: the same /email/batch JSON posted with one requests.Session, no anymail, no adapter.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AMENDS_EMBEDDED", "1")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402

from messaging.esp.base import OutgoingMessage  # noqa: E402
from messaging.esp.postmark import PostmarkAdapter  # noqa: E402
from tests.loopback.esps import PostmarkLoopback  # noqa: E402

BATCH = 500  # Postmark's documented maximum per /email/batch call


def messages(n: int, offset: int = 0) -> list[OutgoingMessage]:
    return [OutgoingMessage(to=f"p{offset + i}@example.test", subject="We are sorry",
                            from_email="care@shop.test", html="<p>Hello {{name}}</p>",
                            text="Hello {{name}}", merge_data={"name": f"P{i}"},
                            metadata={"broadcast_id": 1, "recipient_id": offset + i})
            for i in range(n)]


def raw_rate(server: PostmarkLoopback, total: int) -> float:
    session = requests.Session()
    headers = {"X-Postmark-Server-Token": server.server_token,
               "Content-Type": "application/json", "Accept": "application/json"}
    start = time.perf_counter()
    for offset in range(0, total, BATCH):
        body = [{"From": m.from_email, "To": m.to, "Subject": m.subject, "HtmlBody": m.html,
                 "TextBody": m.text, "TemplateModel": dict(m.merge_data),
                 "Metadata": dict(m.metadata)} for m in messages(BATCH, offset)]
        response = session.post(f"{server.url}/email/batch", data=json.dumps(body),
                                headers=headers, timeout=30)
        response.raise_for_status()
        response.json()
    return total / (time.perf_counter() - start)


def adapter_rate(server: PostmarkLoopback, total: int) -> float:
    esp = PostmarkAdapter(server_token=server.server_token, base_url=server.url)
    start = time.perf_counter()
    for offset in range(0, total, BATCH):
        results = esp.send_batch(messages(BATCH, offset))
        assert all(r.sent for r in results)
    return total / (time.perf_counter() - start)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with PostmarkLoopback() as server:
        raw = raw_rate(server, total)
        server.deliveries.clear()
        ours = adapter_rate(server, total)
        assert not server.duplicates()
    print(f"esp_send_overhead ratio={ours / raw:.2f} adapter_rate={ours:.0f}/s "
          f"raw_rate={raw:.0f}/s recipients={total}")


if __name__ == "__main__":
    main()
