"""The user documentation: a short README whose code runs and whose links resolve, a benchmarks
page that is exactly what the committed run files give, examples that parse, and the site build."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from topicsent.schema import ReviewAnalysis

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


def test_the_readme_is_short_and_starts_with_the_two_set_up_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) < 12 * 1024
    first_block = code_blocks(README, "sh")[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    missing = [
        target for target in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]  # fmt: skip
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_benchmarks_page_is_what_the_committed_runs_give():
    """`make docs` writes docs/benchmarks.md from docs/benchmarks/**.json; a hand edit, or a
    run file added without regenerating, fails here."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "benchmarks_page.py"), "--check"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_run_file_the_benchmarks_page_cites_exists_and_every_run_is_cited():
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    cited = {ROOT / "docs" / target for target in LINK.findall(page) if target.endswith(".json")}
    runs = set((ROOT / "docs" / "benchmarks").rglob("*.json"))
    assert cited == runs


def test_the_output_example_is_a_valid_analysis():
    (example,) = code_blocks(ROOT / "docs" / "output.md", "json")
    analysis = ReviewAnalysis.model_validate_json(example)
    assert analysis.status == "ok" and [a.aspect for a in analysis.aspects] == ["food", "staff"]


def test_the_readme_python_tour_runs(tmp_path, monkeypatch):
    (tour,) = code_blocks(README, "python")
    monkeypatch.chdir(tmp_path)  # it saves models/mams
    namespace: dict = {}
    exec(compile(tour, str(README), "exec"), namespace)  # the README's own code, as a reader runs it
    assert len(namespace["analyses"]) == len(namespace["splits"].test)
    assert set(namespace["frame"].columns) >= {"review_id", "aspect", "aspect_polarity"}
    assert (tmp_path / "models" / "mams" / "topicsent.json").is_file()


MKDOCS_MISSING = "mkdocs-material and mkdocstrings are not installed here (the `docs` extra): `make docs` installs and builds"


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings_handlers")), reason=MKDOCS_MISSING
)
def test_the_documentation_site_builds_offline_without_warnings(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
        capture_output=True, text=True, timeout=600, env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "make_method" in (site / "api.html").read_text(encoding="utf-8")  # mkdocstrings rendered the API
    assert "fonts.googleapis" not in (site / "index.html").read_text(encoding="utf-8")  # reads offline
