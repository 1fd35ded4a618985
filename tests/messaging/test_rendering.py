import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from messaging.models import BrandTemplate
from messaging.rendering import contrast, fill_merge_tags, render_branded_email
from messaging.selectors import brand_template_default
from messaging.services import (
    brand_template_ensure_demo,
    brand_template_save,
    brand_template_set_default,
)

MERGE = {"first_name": "Alex", "email": "alex@example.com",
         "unsubscribe_url": "https://brand.test/u/abc"}


def brand(**overrides) -> BrandTemplate:
    values = {"name": "House", "brand_name": "Northwind", "primary_color": "#1F5FA8",
              "text_color": "#1F2933", "footer_text": "You have an account with us.",
              "postal_address": "Keizersgracht 1, Amsterdam"}
    values.update(overrides)
    return BrandTemplate(**values)


def render(body: str, *, template: BrandTemplate | None = None, subject: str = "Sorry",
           merge: dict | None = None, locale: str = "en"):
    return render_branded_email(template=template or brand(), subject=subject,
                                body_markdown_or_text=body,
                                merge_data=MERGE if merge is None else merge, locale=locale)


def test_user_content_is_escaped_in_the_html_part():
    email = render('<script>alert(1)</script> <img src=x onerror="y"> & **bold**')
    assert "<script>" not in email.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<img src=x" not in email.html and "&amp;" in email.html
    assert "<strong>bold</strong>" in email.html


def test_merge_values_are_escaped_and_filled():
    email = render("Dear {{ first_name }},", subject="{{ first_name }}, we are sorry",
                   merge={**MERGE, "first_name": '<b onclick="x">Al</b>'})
    assert '<b onclick' not in email.html
    assert "Dear &lt;b onclick=&quot;x&quot;&gt;Al&lt;/b&gt;," in email.html
    assert email.subject == '<b onclick="x">Al</b>, we are sorry'  # headers are not HTML
    assert "Dear <b onclick=\"x\">Al</b>," in email.text


def test_brand_fields_are_escaped():
    email = render("Sorry.", template=brand(brand_name="<Brand>",
                                            footer_text="<i>foot</i>",
                                            postal_address="1 <Road>"))
    assert "&lt;Brand&gt;" in email.html and "&lt;i&gt;foot&lt;/i&gt;" in email.html
    assert "1 &lt;Road&gt;" in email.html


def test_footer_address_and_unsubscribe_link_in_both_parts():
    email = render("Sorry.")
    assert "You have an account with us." in email.html
    assert "Keizersgracht 1, Amsterdam" in email.html
    assert 'href="https://brand.test/u/abc"' in email.html and ">Unsubscribe</a>" in email.html
    assert "Unsubscribe: https://brand.test/u/abc" in email.text
    assert "Keizersgracht 1, Amsterdam" in email.text


def test_unsubscribe_placeholder_stays_until_the_sender_fills_it():
    email = render("Sorry.", merge={"first_name": "Alex"})
    assert 'href="{{ unsubscribe_url }}"' in email.html


def test_unsafe_unsubscribe_link_never_reaches_an_href():
    email = render("Sorry.", merge={**MERGE, "unsubscribe_url": "javascript:alert(1)"})
    assert "javascript:" not in email.html and 'href="#"' in email.html


def test_table_layout_in_brand_colours_with_logo():
    email = render("Sorry.", template=brand(logo_url="https://cdn.brand.test/logo.png"))
    assert 'role="presentation"' in email.html and "<table" in email.html
    assert "background-color:#1F5FA8" in email.html
    assert '<img src="https://cdn.brand.test/logo.png" alt="Northwind"' in email.html


def test_light_markup_lists_headings_and_links():
    email = render("Steps:\n- Change your password\n- Turn on 2FA\n\n## Help\n"
                   "1. Visit https://brand.test/help?a=1&b=2.\n2. Reply")
    assert "<ul" in email.html and "<li style=\"margin:0 0 6px 0;\">Turn on 2FA</li>" in \
        email.html
    assert "<h2" in email.html and ">Help</h2>" in email.html and "<ol" in email.html
    assert '<a href="https://brand.test/help?a=1&amp;b=2"' in email.html
    assert "- Change your password" in email.text and "Help" in email.text
    assert "**" not in email.text


def test_javascript_links_are_not_linked():
    email = render("Click javascript:alert(1) now")
    assert "<a href" not in email.html.split('class="footer"')[0]


@pytest.mark.parametrize("locale,direction,word", [("he", "rtl", "right"),
                                                    ("ar", "rtl", "right"),
                                                    ("pl", "ltr", "left")])
def test_language_and_direction_follow_the_locale(locale, direction, word):
    email = render("Sorry.", locale=locale)
    assert f'<html lang="{locale}" dir="{direction}">' in email.html
    assert f"text-align:{word}" in email.html


def test_unknown_merge_tags_are_left_for_the_linter():
    assert fill_merge_tags("Hi {{ nickname }} {{first_name}}", {"first_name": "Al"}) == \
        "Hi {{ nickname }} Al"


def test_header_text_reads_on_a_pale_brand_colour():
    pale = render("Sorry.", template=brand(primary_color="#FFEE00"))
    assert "color:#111827" in pale.html
    assert contrast("#FFFFFF", "#000000") == pytest.approx(21)


def test_no_template_renders_a_plain_look():
    email = render_branded_email(template=None, subject="Sorry", body_markdown_or_text="Hi",
                                 merge_data={}, locale="en")
    assert "<table" in email.html and email.text.strip().endswith(
        "Unsubscribe: {{ unsubscribe_url }}")


# --- Brand templates ------------------------------------------------------------------

@pytest.mark.django_db
def test_first_brand_template_becomes_default_and_default_moves():
    first = brand_template_save(name="A", brand_name="A", postal_address="x",
                                primary_color="#aabbcc", text_color="#112233")
    second = brand_template_save(name="B", brand_name="B", postal_address="x")
    assert first.is_default and not second.is_default and first.primary_color == "#AABBCC"
    brand_template_set_default(template=second)
    assert brand_template_default() == second
    assert BrandTemplate.objects.filter(is_default=True).count() == 1


@pytest.mark.django_db
def test_database_allows_one_default_only():
    brand_template_save(name="A", brand_name="A", postal_address="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        BrandTemplate.objects.create(name="B", brand_name="B", postal_address="x",
                                     is_default=True)


@pytest.mark.django_db
@pytest.mark.parametrize("field,value,message", [
    ("primary_color", "blue", "six hex digits"),
    ("text_color", "#12345", "six hex digits"),
    ("logo_url", "javascript:alert(1)", "http(s) address"),
    ("unsubscribe_url", "mailto:x@y.z", "unsubscribe link"),
])
def test_bad_brand_values_are_refused_with_a_clear_message(field, value, message):
    with pytest.raises(ValidationError) as exc:
        brand_template_save(name="A", brand_name="A", postal_address="x", **{field: value})
    assert field in exc.value.message_dict
    assert message in " ".join(exc.value.message_dict[field])
    assert not BrandTemplate.objects.exists()


@pytest.mark.django_db
def test_database_refuses_bad_colours():
    with pytest.raises(IntegrityError), transaction.atomic():
        BrandTemplate.objects.create(name="B", brand_name="B", postal_address="x",
                                     primary_color="red")


@pytest.mark.django_db
def test_demo_brand_is_idempotent():
    first = brand_template_ensure_demo()
    assert brand_template_ensure_demo() == first and BrandTemplate.objects.count() == 1
    assert first.is_default
