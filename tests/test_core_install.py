"""What a core-only install (`pip install .`, no extras) must do: CI runs the tests marked
``core`` in such a virtualenv, so an unguarded import of an optional dependency cannot land.

They pass in the full test set-up too; the check of each extra's install hint runs only
where that extra is missing. This module imports nothing outside the core dependencies.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from topicsent.data import ColumnMap, read_reviews, sample_path
from topicsent.methods import make_method, method_names
from topicsent.schema import Task

pytestmark = pytest.mark.core

#: A method whose extra is missing fails on fit with the extra to install: (module it needs, extra).
NEEDS_EXTRA = {
    "embed-head": ("torch", "encoders"),
    "finetune": ("torch", "encoders"),
    "setfit": ("setfit", "encoders"),
    "lda": ("tomotopy", "topics"),
}
MAMS_COLUMNS = ColumnMap(text="text", id="sentence_id", aspects="aspect_categories")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "topicsent.interfaces", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["methods"], ["datasets"], ["schema"], ["--help"]])
def test_cli_commands_that_need_no_extra_work(command):
    result = _cli(*command)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()


def test_methods_lists_every_registered_method():
    result = _cli("methods", "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.dumps(json.loads(result.stdout))
    assert all(name in listed for name in method_names())


def test_a_core_method_trains_and_predicts_on_the_bundled_sample():
    train = read_reviews(sample_path("mams_acsa_train.jsonl.gz"), MAMS_COLUMNS, task=Task.ACSA)
    test = read_reviews(sample_path("mams_acsa_test.jsonl.gz"), MAMS_COLUMNS, task=Task.ACSA)
    analyses = make_method("tfidf-lr").fit(train).predict(test.text_only()[:20])
    assert [a.review_id for a in analyses] == [r.id for r in test[:20]]
    assert any(a.aspects for a in analyses) and all(a.status in {"ok", "abstained"} for a in analyses)


@pytest.mark.parametrize("name", sorted(NEEDS_EXTRA))
def test_a_method_whose_extra_is_missing_names_the_extra_to_install(name):
    module, extra = NEEDS_EXTRA[name]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here: this checks a set-up without topicsent[{extra}]")
    train = read_reviews(sample_path("mams_acsa_train.jsonl.gz"), MAMS_COLUMNS, task=Task.ACSA)
    # the exception type is the errors module's business; what a user reads is what counts here
    with pytest.raises(Exception) as raised:
        make_method(name).fit(train[:50])
    assert f"topicsent[{extra}]" in str(raised.value), f"{type(raised.value).__name__}: {raised.value}"
