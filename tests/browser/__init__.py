"""Browser tests share how a person opens a step of the war room."""

from playwright.sync_api import Page, expect


def open_step(page: Page, number: int) -> None:
    """Open a step's card the way a person does: click its one-line summary if closed."""
    card = page.locator(f"#step-{number} > details.step-card")
    if card.get_attribute("open") is None:
        page.locator(f"#step-{number} > details.step-card > summary").click()
    expect(card).to_have_attribute("open", "")
