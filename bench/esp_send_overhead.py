"""What the apology's sending path costs over raw batched HTTP, per ESP.

    python bench/esp_send_overhead.py [recipients] [--esp sendgrid ...]

For each ESP with a batch path, against its loopback (tests/loopback/, run in a process of
its own so its parsing does not share this process's interpreter):

- product: the path apologies use — messages built by `broadcasts.build_messages` from
  ledger rows (one body per locale, merge values per person, unsubscribe link signed per
  person), sent with the account's batch sender (`registry.batch_sender`) at the ESP's
  documented per-call maximum;
- raw: the same request body in the same ESP format built with json.dumps / urlencode from
  the same rows (the body's tags written in the ESP's syntax once, before timing; the same
  per-person values, the unsubscribe link included, and each person's List-Unsubscribe
  header in the ESP's way, as the product sends it), posted with one requests.Session.
  Mandrill takes one set of headers per call, so both sides send it a call per person.

Product and raw alternate, three rounds each (--rounds); the medians are compared. Prints
one line per ESP: `esp_send_overhead esp=<name> ratio=<product/raw> product=<msg/s>
raw=<msg/s> per_call=<n>`; both sides are checked to have been accepted for everyone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from html import escape
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AMENDS_EMBEDDED", "1")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402

from messaging import broadcasts  # noqa: E402
from messaging.esp.httpclient import RetryPolicy  # noqa: E402
from messaging.esp.registry import BATCH_SENDERS, batch_sender  # noqa: E402
from messaging.esp.ses_batch import SigV4  # noqa: E402
from messaging.models import Broadcast  # noqa: E402

PARAGRAPH = ("<p style=\"margin:0 0 16px;font-family:Arial,sans-serif;font-size:16px\">"
             "Yesterday we sent you an email about a sale that was meant for customers in "
             "another country. Nothing changes for you; we are sorry for the confusion and "
             "have changed how we check our sends.</p>")
HTML = ("<html><body><table role=\"presentation\" width=\"100%\"><tr><td>"
        "<p>Dear {{ first_name }},</p>" + PARAGRAPH * 14 +
        "<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></td></tr></table>"
        "</body></html>")
TEXT = "Dear {{ first_name }},\n\n" + ("We are sorry for yesterday's email. " * 20) + \
    "\n\nUnsubscribe: {{ unsubscribe_url }}\n"
SUBJECT = "We made a mistake"
FROM = "Northwind <care@northwind.test>"


# --- the loopback, in its own process --------------------------------------------------------

def _serve(class_name: str, conn) -> None:
    from tests.loopback import batch_esps

    server = getattr(batch_esps, class_name)().start()
    attrs = {k: getattr(server, k) for k in ("url", "api_key", "server_token", "domain",
                                             "access_key", "secret_key") if hasattr(server, k)}
    conn.send(attrs)
    while True:
        command = conn.recv()
        if command == "count":
            with server.lock:
                counts = server.recipient_counts()
                conn.send((sum(counts.values()), sum(1 for n in counts.values() if n > 1)))
                server.deliveries.clear()
                server.reset_calls()
        else:
            server.stop()
            conn.send("stopped")
            return


LOOPBACKS = {"postmark": "PostmarkBatchLoopback", "sendgrid": "SendGridBatchLoopback",
             "mailgun": "MailgunLoopback", "sparkpost": "SparkPostBatchLoopback",
             "ses": "SesLoopback", "brevo": "BrevoBatchLoopback", "mailjet": "MailjetLoopback",
             "mandrill": "MandrillLoopback"}


def options_for(esp: str, a: dict) -> dict:
    return {
        "postmark": {"server_token": a.get("server_token"), "base_url": a["url"]},
        "sendgrid": {"api_key": a.get("api_key"), "base_url": a["url"]},
        "mailgun": {"api_key": a.get("api_key"), "domain": a.get("domain"),
                    "base_url": a["url"]},
        "sparkpost": {"api_key": a.get("api_key"), "base_url": a["url"]},
        "ses": {"access_key": a.get("access_key"), "secret_key": a.get("secret_key"),
                "region": "eu-west-1", "base_url": a["url"]},
        "brevo": {"api_key": a.get("api_key"), "base_url": a["url"]},
        "mailjet": {"api_key": a.get("api_key"), "secret_key": a.get("secret_key"),
                    "base_url": a["url"]},
        "mandrill": {"api_key": a.get("api_key"), "base_url": a["url"]},
    }[esp]


# --- the rows and the product path -------------------------------------------------------------

def rows(n: int, offset: int = 0) -> list[broadcasts.ClaimedRow]:
    return [broadcasts.ClaimedRow(offset + i + 1, offset + i + 1, f"p{offset + i}@bench.test",
                                  f"Person{offset + i} Bench", "en") for i in range(n)]


def the_broadcast() -> Broadcast:
    return Broadcast(pk=1, subject=SUBJECT, from_email="care@northwind.test",
                     from_name="Northwind", default_locale="en",
                     bodies={"en": {"subject": SUBJECT, "html": HTML, "text": TEXT}})


def product_rate(esp: str, attrs: dict, total: int) -> tuple[float, int]:
    sender = batch_sender(esp, retry=RetryPolicy(max_attempts=1), **options_for(esp, attrs))
    per_call = sender.max_per_call
    batch = 1000  # what the ledger claims at once at most; the sender splits per call
    broadcast = the_broadcast()
    start = time.perf_counter()
    for offset in range(0, total, batch):
        messages = broadcasts.build_messages(broadcast, rows(min(batch, total - offset),
                                                             offset), sender_merges=True)
        results = sender.send_batch(messages)
        assert all(r.sent for r in results), results[0]
    return total / (time.perf_counter() - start), per_call


# --- raw: the same bodies, built by hand --------------------------------------------------------

def person(row) -> dict[str, str]:
    first, _sep, last = row.name.partition(" ")
    return {"first_name": first, "last_name": last, "email": row.email,
            "unsubscribe_url": broadcasts.unsubscribe_url(row.subscriber_id)}


def fill(text: str, values: dict[str, str], *, html: bool) -> str:
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", escape(value) if html else value)
    return text


def esp_syntax(text: str, open_: str, close: str, *, suffix: str = "") -> str:
    for key in ("first_name", "last_name", "email", "unsubscribe_url"):
        text = text.replace("{{ " + key + " }}", open_ + key + suffix + close)
    return text


def with_html(values: dict[str, str]) -> dict[str, str]:
    return {**values, **{k + "_html": escape(v) for k, v in values.items()}}


def unsubscribe(values: dict[str, str]) -> dict[str, str]:
    """The person's List-Unsubscribe pair (RFC 2369, and RFC 8058's one-click for an https
    link): any sender of these emails carries it, so the raw client does too."""
    headers = {"List-Unsubscribe": f"<{values['unsubscribe_url']}>"}
    if values["unsubscribe_url"].startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def listed(headers: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in headers.items()]


def variable(name: str) -> str:
    """The per-person variable holding a header's value, for ESPs that substitute one into
    a header shared by the call (Mailgun, SparkPost)."""
    return "amends_h_" + name.lower().replace("-", "_")


def variables(headers: dict[str, str]) -> dict[str, str]:
    return {variable(k): v for k, v in headers.items()}


def raw_body(esp: str, chunk) -> tuple[str, str]:
    j = "application/json"
    if esp == "postmark":
        return json.dumps([{"From": FROM, "To": f"{r.name} <{r.email}>", "Subject": SUBJECT,
                            "Metadata": {"broadcast_id": "1", "recipient_id": str(r.id)},
                            "HtmlBody": fill(HTML, p, html=True),
                            "TextBody": fill(TEXT, p, html=False),
                            "Headers": listed(unsubscribe(p))}
                           for r, p in ((r, person(r)) for r in chunk)]), j
    if esp == "sendgrid":
        return json.dumps({
            "personalizations": [{"to": [{"email": r.email, "name": r.name}],
                                  "custom_args": {"recipient_id": str(r.id)},
                                  "substitutions": {f"-{k}-": v for k, v in
                                                    with_html(p).items()},
                                  "headers": unsubscribe(p)}
                                 for r, p in ((r, person(r)) for r in chunk)],
            "from": {"email": "care@northwind.test", "name": "Northwind"},
            "subject": SUBJECT, "content": [{"type": "text/plain", "value": SG_TEXT},
                                            {"type": "text/html", "value": SG_HTML}],
            "custom_args": {"broadcast_id": "1"}}), j
    if esp == "mailgun":
        fields = [("from", FROM), ("subject", SUBJECT), ("text", MG_TEXT), ("html", MG_HTML)]
        fields += [("to", f"{r.name} <{r.email}>") for r in chunk]
        fields += [("v:broadcast_id", "%recipient.meta_broadcast_id%"),
                   ("v:recipient_id", "%recipient.meta_recipient_id%")]
        fields += [(f"h:{name}", f"%recipient.{variable(name)}%") for name in HEADER_NAMES]
        fields.append(("recipient-variables", json.dumps({
            r.email: {**with_html(p), **variables(unsubscribe(p)), "meta_broadcast_id": "1",
                      "meta_recipient_id": str(r.id)}
            for r, p in ((r, person(r)) for r in chunk)})))
        return urlencode(fields), "application/x-www-form-urlencoded"
    if esp == "sparkpost":
        return json.dumps({
            "content": {"from": {"email": "care@northwind.test", "name": "Northwind"},
                        "subject": SUBJECT, "html": HTML, "text": TEXT,
                        "headers": {name: "{{" + variable(name) + "}}"
                                    for name in HEADER_NAMES}},
            "metadata": {"broadcast_id": "1"},
            "recipients": [{"address": {"email": r.email, "name": r.name},
                            "substitution_data": {**p, **variables(unsubscribe(p))},
                            "metadata": {"recipient_id": str(r.id)}}
                           for r, p in ((r, person(r)) for r in chunk)]}), j
    if esp == "ses":
        return json.dumps({
            "FromEmailAddress": FROM,
            "DefaultContent": {"Template": {"TemplateContent": {
                "Subject": SUBJECT, "Text": SES_TEXT, "Html": SES_HTML}, "TemplateData": "{}"}},
            "BulkEmailEntries": [{
                "Destination": {"ToAddresses": [r.email]},
                "ReplacementTags": [{"Name": "recipient_id", "Value": str(r.id)}],
                "ReplacementEmailContent": {"ReplacementTemplate": {
                    "ReplacementTemplateData": json.dumps(with_html(p))}},
                "ReplacementHeaders": listed(unsubscribe(p))}
                for r, p in ((r, person(r)) for r in chunk)],
            "DefaultEmailTags": [{"Name": "broadcast_id", "Value": "1"}]}), j
    if esp == "brevo":
        return json.dumps({
            "sender": {"email": "care@northwind.test", "name": "Northwind"},
            "subject": SUBJECT, "textContent": BREVO_TEXT, "htmlContent": HTML,
            "headers": {"X-Mailin-custom": '{"broadcast_id":"1"}'},
            "messageVersions": [{"to": [{"email": r.email, "name": r.name}], "params": p,
                                 "subject": SUBJECT, "htmlContent": fill(HTML, p, html=True),
                                 "headers": {**unsubscribe(p),
                                             "X-Mailin-custom": '{"broadcast_id":"1"}'}}
                                for r, p in ((r, person(r)) for r in chunk)]}), j
    if esp == "mailjet":
        return json.dumps({"Messages": [{
            "From": {"Email": "care@northwind.test", "Name": "Northwind"},
            "To": [{"Email": r.email, "Name": r.name}], "Subject": SUBJECT,
            "CustomID": f"1:{r.id}",
            "EventPayload": json.dumps({"broadcast_id": "1", "recipient_id": str(r.id)}),
            "TextPart": fill(TEXT, p, html=False), "HTMLPart": fill(HTML, p, html=True),
            "Headers": unsubscribe(p)}
            for r, p in ((r, person(r)) for r in chunk)]}), j
    if esp == "mandrill":
        return json.dumps({"key": MANDRILL_KEY[0], "message": {
            "from_email": "care@northwind.test", "from_name": "Northwind",
            "subject": SUBJECT, "html": MD_HTML, "text": MD_TEXT,
            "preserve_recipients": False, "merge": True, "merge_language": "handlebars",
            "metadata": {"broadcast_id": "1"},
            # One set of headers per call: a person's own List-Unsubscribe is a call of
            # their own (RAW_PER_CALL).
            "headers": unsubscribe(person(chunk[0])),
            "to": [{"email": r.email, "name": r.name, "type": "to"} for r in chunk],
            "merge_vars": [{"rcpt": r.email, "vars": [{"name": k, "content": v}
                                                      for k, v in person(r).items()]}
                           for r in chunk],
            "recipient_metadata": [{"rcpt": r.email, "values": {"recipient_id": str(r.id)}}
                                   for r in chunk]}}), j
    raise ValueError(esp)


# Bodies in each ESP's merge syntax, written once (as a raw client would).
SG_TEXT, SG_HTML = esp_syntax(TEXT, "-", "-"), esp_syntax(HTML, "-", "-", suffix="_html")
MG_TEXT = esp_syntax(TEXT, "%recipient.", "%")
MG_HTML = esp_syntax(HTML, "%recipient.", "%", suffix="_html")
SES_TEXT, SES_HTML = esp_syntax(TEXT, "{{", "}}"), esp_syntax(HTML, "{{", "}}", suffix="_html")
BREVO_TEXT = esp_syntax(TEXT, "{{ params.", " }}")
MD_TEXT, MD_HTML = esp_syntax(TEXT, "{{{", "}}}"), esp_syntax(HTML, "{{", "}}")
MANDRILL_KEY = [""]
HEADER_NAMES = list(unsubscribe({"unsubscribe_url": broadcasts.unsubscribe_url(1)}))
# Mandrill takes one set of headers per call and its merge tags do not reach them: whoever
# sends each person their own List-Unsubscribe sends each person a call.
RAW_PER_CALL = {"mandrill": 1}


def raw_rate(esp: str, attrs: dict, total: int, per_call: int) -> float:
    session = requests.Session()
    session.headers.update({"Accept": "application/json"})
    url = attrs["url"]
    if esp == "postmark":
        url += "/email/batch"
        session.headers["X-Postmark-Server-Token"] = attrs["server_token"]
    elif esp == "sendgrid":
        url += "/v3/mail/send"
        session.headers["Authorization"] = f"Bearer {attrs['api_key']}"
    elif esp == "mailgun":
        url += f"/v3/{attrs['domain']}/messages"
        session.auth = ("api", attrs["api_key"])
    elif esp == "sparkpost":
        url += "/api/v1/transmissions"
        session.headers["Authorization"] = attrs["api_key"]
    elif esp == "ses":
        url += "/v2/email/outbound-bulk-emails"
        session.auth = SigV4(attrs["access_key"], attrs["secret_key"], "eu-west-1")
    elif esp == "brevo":
        url += "/v3/smtp/email"
        session.headers["api-key"] = attrs["api_key"]
    elif esp == "mailjet":
        url += "/v3.1/send"
        session.auth = (attrs["api_key"], attrs["secret_key"])
    elif esp == "mandrill":
        url += "/api/1.0/messages/send.json"
        MANDRILL_KEY[0] = attrs["api_key"]
    per_call = RAW_PER_CALL.get(esp, per_call)
    start = time.perf_counter()
    for offset in range(0, total, per_call):
        body, content_type = raw_body(esp, rows(min(per_call, total - offset), offset))
        response = session.post(url, data=body, headers={"Content-Type": content_type},
                                timeout=60)
        assert response.status_code < 300, response.text[:300]
        if response.content:
            response.json()
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipients", type=int, nargs="?", default=20_000)
    parser.add_argument("--esp", action="append", choices=sorted(BATCH_SENDERS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = args.recipients
    ctx = multiprocessing.get_context("fork")
    for esp in args.esp or sorted(BATCH_SENDERS):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(LOOPBACKS[esp], child), daemon=True)
        proc.start()
        attrs = parent.recv()
        try:
            # Alternated, three rounds each, the median of each side: the machine is shared
            # and a single run of either can be slowed by other work.
            products, raws = [], []
            for _round in range(args.rounds):
                rate, per_call = product_rate(esp, attrs, total)
                products.append(rate)
                parent.send("count")
                got, dups = parent.recv()
                assert (got, dups) == (total, 0), (esp, got, dups)
                raws.append(raw_rate(esp, attrs, total, per_call))
                parent.send("count")
                got, dups = parent.recv()
                assert (got, dups) == (total, 0), (esp, "raw", got, dups)
        finally:
            parent.send("stop")
            parent.recv()
            proc.join(timeout=10)
        product, raw = statistics.median(products), statistics.median(raws)
        print(f"esp_send_overhead esp={esp} ratio={product / raw:.2f} product={product:.0f}/s "
              f"raw={raw:.0f}/s per_call={per_call} recipients={total}", flush=True)


if __name__ == "__main__":
    main()
