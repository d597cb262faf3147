"""Optional dependencies: one message naming the extra, for every extra, and a core
install (no extras at all) that still lists methods and prints the schema."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from topicsent._extras import EXTRAS, missing_extra, require
from topicsent.errors import MissingExtraError

ROOT = Path(__file__).parents[1]
#: Installs every module of the extras as if it were missing (a core-only install).
BLOCK_EXTRAS = """
import importlib.abc, sys
from topicsent._extras import EXTRAS
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
"""


def _wording(extra: str) -> str:
    return f"install topicsent[{extra}] (pip install 'topicsent[{extra}]')"


def test_every_extra_named_is_one_of_the_package():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(declared)
    assert set(declared) - set(EXTRAS.values()) == {"dev", "docs", "korean-llm"}  # tools and model packages, no module of ours


@pytest.mark.parametrize("extra", sorted(set(EXTRAS.values())))
def test_one_wording_for_each_extra(extra):
    module = next(m for m, e in EXTRAS.items() if e == extra)
    error = missing_extra(module, extra, "topicsent report")
    assert isinstance(error, ImportError) and str(
        error
    ) == f"topicsent report needs {module}, which is not installed: " + _wording(extra)


def _block(monkeypatch, module: str, *evict: str) -> None:
    """``module`` is missing; ``evict``: our modules that imported it at the top, to import again."""
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ModuleNotFoundError
    for name in evict:
        monkeypatch.delitem(sys.modules, name, raising=False)


def _reviews() -> pd.DataFrame:
    return pd.DataFrame({"text": ["Great food", "Rude staff", "Lovely pasta", "Slow service"],
                         "aspects": ["food:positive", "staff:negative", "food:positive", "staff:negative"]})  # fmt: skip


def test_missing_encoders_extra_when_fitting(monkeypatch):
    from topicsent.methods import make_method

    _block(monkeypatch, "setfit")
    with pytest.raises(MissingExtraError) as caught:
        make_method("setfit").fit(_reviews(), aspects="aspects")
    assert str(caught.value) == "method 'setfit' needs setfit, which is not installed: " + _wording("encoders")


def test_missing_topics_extra_when_fitting(monkeypatch):
    from topicsent.methods import make_method

    _block(monkeypatch, "tomotopy")
    with pytest.raises(MissingExtraError, match=r"method 'lda' needs tomotopy, .*topicsent\[topics\]"):
        make_method("lda").fit(_reviews(), aspects="aspects")


def test_missing_llm_extra_for_a_backend(monkeypatch):
    from topicsent.llm import make_backend

    _block(monkeypatch, "httpx", "topicsent.llm._openai")
    with pytest.raises(MissingExtraError, match=r"the openai backend needs httpx, .*topicsent\[llm\]"):
        make_backend("openai", "gpt-4o-mini", base_url="http://127.0.0.1:9")


def test_missing_llm_extra_for_retries(monkeypatch):
    _block(monkeypatch, "tenacity")
    with pytest.raises(MissingExtraError, match=r"calling an LLM needs tenacity, .*topicsent\[llm\]"):
        require("tenacity", needed_by="calling an LLM")


@pytest.mark.parametrize(
    ("module", "extra", "needed_by"),
    [("matplotlib", "report", "topicsent report"), ("jinja2", "report", "topicsent report"),
     ("uvicorn", "serve", "topicsent serve"), ("ray", "scale", "--engine ray"), ("duckdb", "sql", "storing runs in DuckDB")],
)  # fmt: skip
def test_missing_extra_names_the_extra_its_caller_needs(monkeypatch, module, extra, needed_by):
    _block(monkeypatch, module)
    with pytest.raises(MissingExtraError) as caught:
        require(module, extra, needed_by=needed_by)
    assert str(caught.value) == f"{needed_by} needs {module}, which is not installed: " + _wording(extra)


def test_a_broken_installed_module_is_not_a_missing_extra(monkeypatch, tmp_path):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import no_such_helper_module\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module, extra in (("brokenpkg", "llm"), ("no_such_helper_module", None)):
        with pytest.raises(ModuleNotFoundError) as caught:
            require(module, extra)
        assert not isinstance(caught.value, MissingExtraError) and caught.value.name == "no_such_helper_module"


def test_a_core_install_lists_methods_and_prints_the_schema():
    """No extra installed: ``topicsent methods`` and ``topicsent schema`` work (they
    crashed on the tenacity import), and fitting a method that needs an extra says which."""
    script = (
        BLOCK_EXTRAS
        + """
from typer.testing import CliRunner
from topicsent.interfaces.cli import app
for command in (["methods", "--format", "json"], ["schema"]):
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, (command, result.output, result.exception)
    print(result.output[:20000])
from topicsent.methods import make_method, method_names
import pandas as pd
frame = pd.DataFrame({"text": ["good", "bad"] * 2, "aspects": ["food:positive", "food:negative"] * 2})
try:
    make_method("embed-head").fit(frame, aspects="aspects")
except Exception as error:
    print("FIT:", type(error).__name__, error)
"""
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from topicsent.methods import method_names

    assert all(f'"{name}"' in done.stdout for name in method_names())
    fit = done.stdout[done.stdout.index("FIT:") :]
    assert fit.startswith("FIT: MissingExtraError ") and fit.rstrip().endswith(_wording("encoders")), fit
