"""docs/ tells the truth about the tables in the code: the lifecycle and access tables are
rendered from LIFECYCLE and READ_RULES, and the suite fails while a document is stale."""

import shutil
from pathlib import Path

from click.testing import CliRunner

from ops_portal import reference
from ops_portal.cli import check_docs, write_docs
from ops_portal.domain.lifecycle import LIFECYCLE, Action

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_table_in_docs_matches_the_code():
    stale = reference.stale_documents(ROOT)
    assert stale == [], f"run `flask --app ops_portal docs write`: {stale} are stale"


def test_the_lifecycle_document_lists_every_action_with_its_statuses():
    text = (ROOT / "docs" / "lifecycle.md").read_text()
    for action, rule in LIFECYCLE.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{action}` |"))
        assert f"`{rule.target}`" in row
        assert all(f"`{status}`" in row for status in rule.sources)


def test_a_document_that_disagrees_with_the_table_is_found_stale_and_rewritten(tmp_path):
    for path in reference.GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    lifecycle = tmp_path / "docs" / "lifecycle.md"
    truth = lifecycle.read_text()
    row = f"| `{Action.ACCEPT}` |"
    lifecycle.write_text(truth.replace(row, "| `accept-twice` |"))  # someone edited the table

    assert reference.stale_documents(tmp_path) == ["docs/lifecycle.md"]
    refused = CliRunner().invoke(check_docs, ["--root", str(tmp_path)])
    assert refused.exit_code == 1 and "docs/lifecycle.md" in refused.output

    written = CliRunner().invoke(write_docs, ["--root", str(tmp_path)])
    assert written.exit_code == 0 and "rewrote docs/lifecycle.md" in written.output
    assert lifecycle.read_text() == truth
    assert CliRunner().invoke(check_docs, ["--root", str(tmp_path)]).exit_code == 0


def test_the_wheel_packages_every_python_package_of_the_app():
    """pyproject lists the packages explicitly: a new one left out installs an app that cannot
    import itself."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "ops_portal").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
