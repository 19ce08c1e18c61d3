"""The README and docs/ hold together: links resolve, the README stays short, and its two set-up
commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INSTALL_AND_DEMO = "pip install -e . && python -m experiments.aim1 --demo"
INSTALL_AND_TEST = "pip install -e '.[convert,test]' && python -m pytest"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces '-'."""
    found, in_code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            heading = re.sub(r"^#+ ", "", line).strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


def _links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    return [m for m in LINK.findall(text) if not re.match(r"[a-z]+://|mailto:", m)]


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        for link in _links(page.read_text()):
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert broken == []


def test_readme_is_short_and_points_into_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    linked = {Path(link.partition("#")[0]).name for link in _links(text)}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def test_the_two_set_up_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert INSTALL_AND_DEMO in readme and INSTALL_AND_TEST in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert INSTALL_AND_TEST.replace("pip", "python -m pip", 1) in ci
