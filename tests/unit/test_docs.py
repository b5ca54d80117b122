"""The documentation: the site builds with --strict and its pages' own anchors resolve, the
configuration reference holds every key of the schema, and the README stays a front door
whose figures each say when and at which commit they were measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")
DATE_AND_COMMIT = re.compile(r"(\d{4}-\d{2}-\d{2}), ([0-9a-f]{7,40})\b")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(folder)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder


def page_html(site: Path, page: str) -> str:
    return (site / f"{page}.html").read_text()


def test_links_within_a_page_name_its_headings(site):
    """mkdocs checks anchors on other pages; this checks a page's links to its own."""
    for source in sorted((REPO / "docs").glob("*.md")):
        ids = set(re.findall(r'id="([^"]+)"', page_html(site, source.stem)))
        for anchor in re.findall(r"\]\(#([^)]+)\)", source.read_text()):
            assert anchor in ids, f"{source.name}: #{anchor}"


def test_the_configuration_reference_has_every_key_of_the_schema(site):
    sys.path.insert(0, str(REPO / "docs" / "hooks"))
    try:
        from config_reference import keys
    finally:
        sys.path.remove(str(REPO / "docs" / "hooks"))
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    html = page_html(site, "configuration")
    found = list(keys(schema))
    assert len(found) > 40
    for path, node in found:
        assert "description" in node, path
        assert f"<code>{path.replace('<', '&lt;').replace('>', '&gt;')}</code>" in html, path
    assert "hook" not in html.split("Keys", 1)[1][:200]  # the marker was replaced


def test_the_readme_is_a_front_door_linking_into_the_docs():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (REPO / target).exists(), target
    for page in ("tutorial", "operators", "end-users", "configuration", "performance", "design"):
        assert f"docs/{page}.md" in readme


def measured(table: str) -> list[tuple[str, str]]:
    """The (date, commit) of each row of a Markdown table of figures."""
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    assert rows
    found = []
    for row in rows:
        match = DATE_AND_COMMIT.search(row.rsplit("|", 2)[1])
        assert match, f"a figure without its date and commit: {row}"
        found.append(match.groups())
    return found


@pytest.mark.parametrize(
    "document, heading",
    [("README.md", "## Headline figures"), ("docs/performance.md", "## Headline figures")],
)
def test_every_headline_figure_has_the_date_and_commit_it_was_measured_at(document, heading):
    text = (REPO / document).read_text()
    table = text.split(heading, 1)[1].split("\n## ", 1)[0]
    known = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=REPO, capture_output=True)
    for _date, commit in measured(table):
        if known.returncode == 0:  # a checkout with its history: the commit is in it
            found = subprocess.run(
                ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True
            )
            assert found.returncode == 0, commit


def test_the_end_users_page_shows_the_examples_code(site):
    """The snippets are the examples' own code, included at build time."""
    text = re.sub(r"<[^>]+>", "", page_html(site, "end-users"))
    assert text.count("def load_year(") == 2  # odc-stac's and stackstac's
    assert "--8&lt;--" not in text


def test_the_configuration_pages_example_is_a_valid_config():
    import jsonschema

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    page = (REPO / "docs" / "configuration.md").read_text()
    (example,) = re.findall(r"^```yaml\n(.*?)^```$", page, re.M | re.S)
    jsonschema.validate(yaml.safe_load(example), schema)
    tutorial = (REPO / "docs" / "tutorial.md").read_text()
    assert example in tutorial  # the config the tutorial runs
