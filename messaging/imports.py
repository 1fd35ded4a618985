"""The campaign recipient log file (who a campaign reached, when, with which message id),
plugged into the audiences import engine."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.imports import Column, FileProblem, ImportKind, RowInvalid
from audiences.imports.engine import STAGING
from audiences.imports.kinds import EMAIL, _unknown_subscriber_check, clean_email
from audiences.models import Subscriber

from .models import Campaign, CampaignRecipient


def parse_when(value: str) -> datetime:
    """ISO 8601 as ESPs export it ('2026-03-02T09:12:00Z', '2026-03-02 09:12:00+01:00');
    a time without offset is read in the site's time zone."""
    when = datetime.fromisoformat(value.replace(" UTC", "Z"))
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when.astimezone(UTC)


class RecipientLogImport(ImportKind):
    key = "recipients"
    label = gettext_lazy("Campaign recipient log")
    columns = [
        EMAIL,
        Column("sent_at", gettext_lazy("Sent at"), (
            "Sent At", "Sent Time", "Send Time", "Timestamp", "Sent Date", "Date Sent",
            "Delivered At", "Time")),
        Column("message_id", gettext_lazy("Message id"), (
            "Message ID", "ESP Message ID", "Msg ID", "Message-ID", "SMTP ID")),
        Column("campaign", gettext_lazy("Campaign"), (
            "Campaign", "Campaign ID", "ESP Campaign ID", "Campaign Id")),
    ]
    staging = [("email_key", "text", "text"), ("campaign", "text", "text"),
               ("sent_at", "timestamptz", "text"), ("message_id", "text", "text")]

    def check_options(self) -> None:
        campaign = self.options.get("campaign")
        self.default_campaign = ""
        if campaign:
            found = Campaign.objects.filter(pk=getattr(campaign, "pk", campaign)).first()
            if found is None:
                raise FileProblem(_("Unknown campaign %(id)s.") % {"id": campaign})
            self.default_campaign = found.esp_campaign_id
        self.default_sent_at = self.options.get("sent_at") or timezone.now()

    def clean(self, values, extra) -> tuple:
        errors: list[tuple[str, str]] = []
        email = clean_email(values["email"], errors, self.header_of("email"))
        campaign = values.get("campaign") or self.default_campaign
        if not campaign:
            errors.append((self.header_of("campaign"), _(
                "no campaign: fill the column or choose a campaign for the whole file.")))
        sent_at = self.default_sent_at
        if values.get("sent_at"):
            try:
                sent_at = parse_when(values["sent_at"])
            except ValueError:
                errors.append((self.header_of("sent_at"), _(
                    "“%(value)s” is not a date and time (use ISO 8601, e.g. "
                    "2026-03-02T09:12:00Z).") % {"value": values["sent_at"]}))
        message_id = values.get("message_id", "")
        if len(message_id) > 200:
            errors.append((self.header_of("message_id"), _(
                "the message id is longer than 200 characters.")))
        if errors:
            raise RowInvalid(errors)
        return (email.lower(), campaign, connection.ops.adapt_datetimefield_value(sent_at)
                if connection.vendor != "postgresql" else sent_at, message_id)

    def set_checks(self, cursor):
        yield _unknown_subscriber_check(self.header_of("email"))
        yield (f"SELECT line, %s FROM {STAGING} st WHERE NOT EXISTS (SELECT 1 FROM "
               f"{Campaign._meta.db_table} c WHERE c.esp_campaign_id = st.campaign) "
               f"ORDER BY line", self.header_of("campaign"),
               _("no campaign has this ESP id."))

    def apply(self, cursor, now) -> dict[str, int]:
        recipients = CampaignRecipient._meta.db_table
        # One row per campaign and person; a file listing someone twice keeps the first.
        cursor.execute(f"""
            INSERT INTO {recipients} (campaign_id, subscriber_id, sent_at, esp_message_id)
            SELECT c.id, s.id, MIN(st.sent_at), MIN(st.message_id) FROM {STAGING} st
            JOIN {Subscriber._meta.db_table} s ON LOWER(s.email) = st.email_key
            JOIN {Campaign._meta.db_table} c ON c.esp_campaign_id = st.campaign
            WHERE NOT EXISTS (SELECT 1 FROM {recipients} r
                              WHERE r.campaign_id = c.id AND r.subscriber_id = s.id)
            GROUP BY c.id, s.id
        """)
        created = cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING}")
        total = cursor.fetchone()[0]
        return {"created": created, "unchanged": total - created}
