"""The front door and the documentation: two quickstart commands, a short README, links that resolve, and no
reference to a path outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    """The files git tracks (what a clone has), or every file below the root outside a checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", ".git", "results"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.parts)]
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_readme_quickstart_has_exactly_two_commands_and_ci_uses_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```", 2)[1]
    commands = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#")]
    assert commands == ["python3 tasks.py demo", "python3 tasks.py test"]
    assert "python3 tasks.py test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_in_the_repository(page: Path) -> None:
    text = page.read_text()
    links = [a or b for a, b in LINK.findall(text)]
    bad = []
    for link in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # a web address or an anchor on the same page
        target = (page.parent / link.split("#", 1)[0]).resolve()
        if not target.exists() or not target.is_relative_to(ROOT):
            bad.append(link)
    assert not bad, f"{page.name}: links that do not resolve inside the repository: {bad}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    unlinked = [p.name for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in readme]
    assert not unlinked, f"docs pages a reader of the README cannot find: {unlinked}"


def test_nothing_in_the_repository_points_outside_it() -> None:
    # spelled in pieces so that this file does not match itself
    outside, machine = "/".join(["..", "shared"]), "/".join(["", "work", ""])
    hits = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if outside in text or machine in text:
            hits.append(str(path.relative_to(ROOT)))
    assert not hits, f"files naming a path outside the repository: {hits}"
