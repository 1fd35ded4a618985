"""axe-core in a real page: inject the npm package's axe.min.js and report what it finds.

bin/test installs axe-core (package-lock.json pins it). Our CSP allows no inline script,
so the page's context must be created with bypass_csp=True (`login(..., bypass_csp=True)`).
"""

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conftest import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0/2.1/2.2 A and AA, plus axe's best practices (landmarks, one h1, heading order…).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")


def axe_violations(page: Page, *, context: str | None = None) -> list[dict]:
    """Run axe on the page as it is now (or on the `context` selector); its violations."""
    if not Path(AXE).is_file():
        pytest.fail(f"{AXE} is missing: run bin/test (it runs 'npm ci') or 'npm ci'.")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    # From the top: scrolled down, the sticky step tracker lies over whatever is under it and
    # axe counts those controls as obscured targets, a finding of the scroll position.
    page.evaluate("window.scrollTo(0, 0)")
    result = page.evaluate(
        """([context, tags]) => axe.run(context ? document.querySelector(context) : document,
                                        {runOnly: {type: "tag", values: tags},
                                         resultTypes: ["violations"]})""",
        [context, TAGS],
    )
    return result["violations"]


def describe(violations: list[dict], *, targets: int = 3) -> str:
    """One readable paragraph per violation: id, impact, help, where (first targets)."""
    lines = []
    for v in violations:
        nodes = v["nodes"]
        where = ", ".join(" ".join(map(str, n["target"])) for n in nodes[:targets])
        more = f" (+{len(nodes) - targets} more)" if len(nodes) > targets else ""
        lines.append(f"- {v['id']} [{v['impact']}]: {v['help']}\n    at {where}{more}")
        first = nodes[0].get("failureSummary", "").replace("\n", " ") if nodes else ""
        if first:
            lines.append(f"    {first}")
    return "\n".join(lines)


def assert_accessible(page: Page, *, label: str = "", impacts=BLOCKING) -> list[dict]:
    """Fail, listing each one, on any violation of the given impacts; return all of them
    (the minor and moderate ones too, for a test that wants to print them)."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in impacts]
    assert not blocking, (
        f"axe found {len(blocking)} serious or critical violation(s) on {label or page.url}:\n"
        + describe(blocking))
    return violations
