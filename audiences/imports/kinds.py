"""The audience files: subscribers, segment membership, suppression lists."""

from __future__ import annotations

import json
import re

from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import (
    Segment,
    SegmentMembership,
    Subscriber,
    SubscriberStatus,
    SuppressionEntry,
    SuppressionList,
)
from .engine import STAGING, ImportKind, RowInvalid, shown_value
from .reader import Column, FileProblem

# Deliberately simple: one @, something before, a dotted domain, no spaces. ESP exports
# are already validated; this catches shifted columns and typos, not RFC corner cases.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

EMAIL = Column("email", gettext_lazy("Email"), (
    "Email Address", "E-mail", "Email", "Mail", "E-mail Address", "Subscriber Email",
    "Recipient", "Recipient Email", "Email_Address", "emailaddress", "Correo", "E-Mail-Adresse",
), required=True)

# ESP spellings of a subscriber's status → ours. Blank means "leave as it is".
STATUS_WORDS = {
    "active": SubscriberStatus.ACTIVE, "subscribed": SubscriberStatus.ACTIVE,
    "optedin": SubscriberStatus.ACTIVE, "confirmed": SubscriberStatus.ACTIVE,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED, "optedout": SubscriberStatus.UNSUBSCRIBED,
    "optout": SubscriberStatus.UNSUBSCRIBED, "unsubscribe": SubscriberStatus.UNSUBSCRIBED,
    "bounced": SubscriberStatus.BOUNCED, "cleaned": SubscriberStatus.BOUNCED,
    "hardbounce": SubscriberStatus.BOUNCED, "hardbounced": SubscriberStatus.BOUNCED,
    "bounce": SubscriberStatus.BOUNCED,
    "complained": SubscriberStatus.COMPLAINED, "spam": SubscriberStatus.COMPLAINED,
    "spamcomplaint": SubscriberStatus.COMPLAINED, "complaint": SubscriberStatus.COMPLAINED,
}


def clean_email(value: str, errors: list, header: str) -> str:
    if not value:
        errors.append((header, _("the email address is empty.")))
    elif len(value) > 254 or not EMAIL_RE.match(value):
        errors.append((header, _("“%(value)s” is not an email address.")
                       % {"value": shown_value(value)}))
    return value


def _now_param(now):
    return connection.ops.adapt_datetimefield_value(now)


class SubscriberImport(ImportKind):
    key = "subscribers"
    label = gettext_lazy("Subscribers")
    keeps_extra_columns = True  # other columns become attributes
    columns = [
        EMAIL,
        Column("name", gettext_lazy("Name"), ("Full Name", "Name", "Subscriber Name",
                                              "Display Name", "Contact Name")),
        Column("first_name", gettext_lazy("First name"), (
            "First Name", "FNAME", "Firstname", "Given Name", "First")),
        Column("last_name", gettext_lazy("Last name"), (
            "Last Name", "LNAME", "Lastname", "Surname", "Family Name", "Last")),
        Column("locale", gettext_lazy("Locale"), (
            "Language", "Lang", "Locale", "Preferred Language", "Language Code")),
        Column("status", gettext_lazy("Status"), (
            "Status", "Subscription Status", "Member Status", "Email Status",
            "Subscriber Status")),
    ]
    staging = [("email", "text", "text"), ("email_key", "text", "text"),
               ("name", "text", "text"), ("locale", "text", "text"),
               ("status", "text", "text"), ("attributes", "text", "text")]

    def clean(self, values: dict[str, str], extra: dict[str, str]) -> tuple:
        errors: list[tuple[str, str]] = []
        email = clean_email(values["email"], errors, self.header_of("email"))
        name = values.get("name") or " ".join(
            v for v in (values.get("first_name"), values.get("last_name")) if v)
        if len(name) > 200:
            errors.append((self.header_of("name"), _("the name is longer than 200 "
                                                     "characters.")))
        locale = values.get("locale", "")
        if len(locale) > 16:
            errors.append((self.header_of("locale"), _(
                "“%(value)s” is not a locale (use a code such as en or nl-BE).")
                % {"value": shown_value(locale)}))
        status = ""
        if values.get("status"):
            status = STATUS_WORDS.get(re.sub(r"[^a-z]", "", values["status"].lower()), "")
            if not status:
                errors.append((self.header_of("status"), _(
                    "“%(value)s” is not a status we know (active, unsubscribed, bounced, "
                    "complained).") % {"value": shown_value(values["status"])}))
        if errors:
            raise RowInvalid(errors)
        attributes = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else "{}"
        return (email, email.lower(), name, locale, status, attributes)

    def set_checks(self, cursor):
        yield (f"SELECT line, CAST(%s AS text) || CAST(first AS text) || '.' FROM ("
               f"SELECT line, MIN(line) OVER (PARTITION BY email_key) AS first "
               f"FROM {STAGING}) d "
               f"WHERE line <> first ORDER BY line",
               self.header_of("email"), _("the same address as line "))

    def apply(self, cursor, now) -> dict[str, int]:
        table = Subscriber._meta.db_table
        pg = connection.vendor == "postgresql"
        # Imports may record that someone left, bounced or complained, but never
        # re-subscribe them: consent is not restored by a spreadsheet.
        if pg:
            merged, contains = ("s.attributes || st.attributes::jsonb",
                                "s.attributes @> st.attributes::jsonb")
        else:
            merged = "json_patch(s.attributes, st.attributes)"
            contains = "json(json_patch(s.attributes, st.attributes)) = json(s.attributes)"
        status_changes = ("st.status NOT IN ('', 'active') AND st.status <> s.status")
        cursor.execute(f"""
            UPDATE {table} AS s SET
                name = CASE WHEN st.name <> '' THEN st.name ELSE s.name END,
                locale = CASE WHEN st.locale <> '' THEN st.locale ELSE s.locale END,
                status = CASE WHEN {status_changes} THEN st.status ELSE s.status END,
                attributes = {merged},
                updated_at = %s
            FROM {STAGING} st
            WHERE LOWER(s.email) = st.email_key AND (
                (st.name <> '' AND st.name <> s.name)
                OR (st.locale <> '' AND st.locale <> s.locale)
                OR ({status_changes}) OR NOT ({contains}))
        """, [_now_param(now)])
        updated = cursor.rowcount
        cursor.execute(f"""
            INSERT INTO {table} (email, name, locale, status, attributes, created_at,
                                 updated_at)
            SELECT st.email, st.name, st.locale,
                   CASE WHEN st.status = '' THEN 'active' ELSE st.status END,
                   {"st.attributes::jsonb" if pg else "json(st.attributes)"}, %s, %s
            FROM {STAGING} st
            WHERE NOT EXISTS (SELECT 1 FROM {table} s WHERE LOWER(s.email) = st.email_key)
            ORDER BY st.line
        """, [_now_param(now), _now_param(now)])
        created = cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING}")
        total = cursor.fetchone()[0]
        return {"created": created, "updated": updated,
                "unchanged": total - created - updated}


def _unknown_subscriber_check(header: str):
    return (f"SELECT line, %s FROM {STAGING} st WHERE NOT EXISTS (SELECT 1 FROM "
            f"{Subscriber._meta.db_table} s WHERE LOWER(s.email) = st.email_key) "
            f"ORDER BY line", header, _("no subscriber has this address; import the "
                                         "subscribers first."))


class MembershipImport(ImportKind):
    key = "segments"
    label = gettext_lazy("Segment membership")
    columns = [EMAIL, Column("segment", gettext_lazy("Segment"), (
        "Segment", "Segment Name", "List", "List Name", "Audience", "Tag", "Group"))]
    staging = [("email_key", "text", "text"), ("segment", "text", "text")]

    def check_options(self) -> None:
        name = (self.options.get("segment") or "").strip()
        if len(name) > 200:
            raise FileProblem(_("A segment name is at most 200 characters."))
        self.options["segment"] = name

    def clean(self, values, extra) -> tuple:
        errors: list[tuple[str, str]] = []
        email = clean_email(values["email"], errors, self.header_of("email"))
        segment = values.get("segment") or self.options["segment"]
        if not segment:
            errors.append((self.header_of("segment"), _(
                "no segment named: fill the column or choose a segment for the whole file.")))
        elif len(segment) > 200:
            errors.append((self.header_of("segment"), _("a segment name is at most 200 "
                                                        "characters.")))
        if errors:
            raise RowInvalid(errors)
        return (email.lower(), segment)

    def set_checks(self, cursor):
        yield _unknown_subscriber_check(self.header_of("email"))

    def apply(self, cursor, now) -> dict[str, int]:
        segments, memberships = Segment._meta.db_table, SegmentMembership._meta.db_table
        cursor.execute(f"""
            INSERT INTO {segments} (name, description, created_at)
            SELECT DISTINCT st.segment, '', %s FROM {STAGING} st
            WHERE NOT EXISTS (SELECT 1 FROM {segments} g WHERE g.name = st.segment)
        """, [_now_param(now)])
        new_segments = cursor.rowcount
        cursor.execute(f"""
            INSERT INTO {memberships} (segment_id, subscriber_id, added_at)
            SELECT DISTINCT g.id, s.id, %s FROM {STAGING} st
            JOIN {Subscriber._meta.db_table} s ON LOWER(s.email) = st.email_key
            JOIN {segments} g ON g.name = st.segment
            WHERE NOT EXISTS (SELECT 1 FROM {memberships} m
                              WHERE m.segment_id = g.id AND m.subscriber_id = s.id)
        """, [_now_param(now)])
        created = cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING}")
        total = cursor.fetchone()[0]
        return {"segments created": new_segments, "created": created,
                "unchanged": total - created}


class SuppressionImport(ImportKind):
    key = "suppression"
    label = gettext_lazy("Suppression list")
    columns = [EMAIL, Column("reason", gettext_lazy("Reason"), (
        "Reason", "Suppression Reason", "Comment", "Note", "Unsubscribe Reason"))]
    staging = [("email_key", "text", "text"), ("reason", "text", "text")]

    def check_options(self) -> None:
        name = (self.options.get("list_name") or "").strip()
        if not name:
            raise FileProblem(_("Name the suppression list these addresses go on."))
        if len(name) > 200:
            raise FileProblem(_("A list name is at most 200 characters."))
        self.options["list_name"] = name
        self.options["source"] = (self.options.get("source") or "").strip()[:200]

    def clean(self, values, extra) -> tuple:
        errors: list[tuple[str, str]] = []
        email = clean_email(values["email"], errors, self.header_of("email"))
        reason = values.get("reason", "")
        if len(reason) > 200:
            errors.append((self.header_of("reason"), _("the reason is longer than 200 "
                                                       "characters.")))
        if errors:
            raise RowInvalid(errors)
        return (email.lower(), reason)

    def apply(self, cursor, now) -> dict[str, int]:
        lists, entries = SuppressionList._meta.db_table, SuppressionEntry._meta.db_table
        cursor.execute(f"""
            INSERT INTO {lists} (name, source, description, created_at)
            SELECT %s, %s, '', %s
            WHERE NOT EXISTS (SELECT 1 FROM {lists} WHERE name = %s)
        """, [self.options["list_name"], self.options["source"], _now_param(now),
              self.options["list_name"]])
        cursor.execute(f"SELECT id FROM {lists} WHERE name = %s", [self.options["list_name"]])
        list_id = cursor.fetchone()[0]
        cursor.execute(f"""
            INSERT INTO {entries} (suppression_list_id, email, reason, added_at)
            SELECT %s, st.email_key, MAX(st.reason), %s FROM {STAGING} st
            WHERE NOT EXISTS (SELECT 1 FROM {entries} e
                              WHERE e.suppression_list_id = %s AND e.email = st.email_key)
            GROUP BY st.email_key
        """, [list_id, _now_param(now), list_id])
        created = cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING}")
        total = cursor.fetchone()[0]
        return {"created": created, "unchanged": total - created}


KINDS: dict[str, type[ImportKind]] = {
    SubscriberImport.key: SubscriberImport,
    MembershipImport.key: MembershipImport,
    SuppressionImport.key: SuppressionImport,
}


def register_kind(kind: type[ImportKind]) -> None:
    """Apps further up (messaging) add their files here; audiences never imports them."""
    KINDS[kind.key] = kind
