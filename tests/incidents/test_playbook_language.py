"""The playbook's own words in a record (step titles, goals, checklist items) read in the
reader's language; what the team wrote or edited reads as written."""

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

from accounts.models import UserPreference
from incidents import services
from tests.factories import declare

pytestmark = pytest.mark.django_db


def test_a_polish_reader_sees_the_playbook_in_polish_and_the_teams_words_as_written(
        client, marketer):
    incident = declare(marketer)
    step = incident.steps.get(number=1)
    first, second = step.items.order_by("position")[:2]
    services.checklist_item_edit(item=second, actor=marketer, text="Call Anna at the agency")
    UserPreference.objects.create(user=marketer, language="pl")
    client.force_login(marketer)
    client.post(reverse("accounts:language"), {"language": "pl"})

    html = client.get(reverse("incidents:incident-detail", args=[incident.pk])).content.decode()

    with translation.override("pl"):
        for english in (step.title, step.goal, first.text):
            polish = gettext(english)
            assert polish != english, f"no Polish for {english!r}"
            assert escape(polish) in html
    assert "Call Anna at the agency" in html
    assert escape(step.title) not in html  # the stored English title is not shown
