"""The plan's content, field by field, and how two versions (or two signed packages)
compare line by line."""

import difflib
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from incidents.plan.models import CompensationKind, PlanVersion

# The plan's content, in reading order; also the order of the diff.
PLAN_FIELDS: list[tuple[str, str]] = [
    ("internal_steps", gettext_lazy("Internal steps")),
    ("subscriber_message", gettext_lazy("What subscribers are told")),
    ("subscriber_action_required", gettext_lazy("Subscribers must act")),
    ("subscriber_actions", gettext_lazy("What subscribers must do")),
    ("compensation_kind", gettext_lazy("Compensation")),
    ("compensation_value", gettext_lazy("Compensation value")),
    ("compensation_eligibility", gettext_lazy("Who qualifies")),
    ("process_changes", gettext_lazy("Process and system changes")),
    ("follow_ups", gettext_lazy("Follow-up actions")),
]


def plan_field_lines(version: PlanVersion, name: str) -> list[str]:
    value = getattr(version, name)
    if name == "subscriber_action_required":
        return [_("Yes") if value else _("No")]
    if name == "compensation_kind":
        return [str(CompensationKind(value).label)]
    if name == "follow_ups":
        return [_("%(action)s — %(owner)s — due %(due)s") % {
            "action": f["action"], "owner": f["owner_name"], "due": f["due"]} for f in value]
    return value.splitlines()


@dataclass(frozen=True)
class FieldDiff:
    name: str
    label: str
    changed: bool
    lines: list[tuple[str, str]]  # ("add" | "del" | "same", text)


def diff_lines(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    """("add" | "del" | "same", text) per line, difflib's line-based comparison."""
    lines = []
    for row in difflib.ndiff(a, b):
        tag, text = row[:2], row[2:]
        if tag == "+ ":
            lines.append(("add", text))
        elif tag == "- ":
            lines.append(("del", text))
        elif tag == "  ":
            lines.append(("same", text))
    return lines


def plan_diff(*, old: PlanVersion, new: PlanVersion) -> list[FieldDiff]:
    """Line by line, per field; unchanged fields are listed but carry no lines."""
    out = []
    for name, label in PLAN_FIELDS:
        a, b = plan_field_lines(old, name), plan_field_lines(new, name)
        if a == b:
            out.append(FieldDiff(name, str(label), False, []))
            continue
        out.append(FieldDiff(name, str(label), True, diff_lines(a, b)))
    return out


def plan_fields_for_display(version: PlanVersion) -> list[tuple[str, list[str]]]:
    return [(str(label), plan_field_lines(version, name)) for name, label in PLAN_FIELDS]
