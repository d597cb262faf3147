"""The import contract: layers only point down, and code outside the package uses its
public modules. Read from the source (ast), so lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "topicsent"

#: Bottom to top. A module may import its own layer and those below, never above.
LAYERS: list[set[str]] = [
    {"errors", "_extras", "_folders", "_progress", "_provenance", "_version", "schema", "summary", "text"},
    {"data"},
    {"encoders", "llm", "metrics"},  # the backend layer, beside the encoders
    {"methods", "topics"},
    {"eval", "runs", "teacher", "labelling"},
    {"report", "interfaces"},
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}

#: (test file, private module) pairs that test an internal piece on purpose, with why.
INTERNAL_TESTS: dict[tuple[str, str], str] = {
    ("test_encoder_methods.py", "topicsent.methods._finetuning"): "base resolution, autocast and device choice",
    ("test_encoder_methods.py", "topicsent.methods._one_pass"): "the one-pass loss and text encoding",
    ("test_encoder_methods.py", "topicsent.methods._pair_classifier"): "auxiliary sentences and per-class sampling",
    ("test_sft.py", "topicsent.methods._finetuning"): "base resolution and GGUF dequantisation",
    ("test_adapt.py", "topicsent.methods._finetuning"): "killing an adaptation at its checkpoint (monkeypatched)",
    ("test_sft.py", "topicsent.methods.llm._lora_gguf"): "LoRA export to llama.cpp GGUF",
    ("test_sft.py", "topicsent.methods.llm._tuning"): "causal-LM loading",
    ("test_models.py", "topicsent._folders"): "a model folder written once",
    ("test_models.py", "topicsent.interfaces._options"): "the CLI console",
    ("test_models.py", "topicsent.methods._finetuning"): "the base model's licence lookup",
    ("test_assembled_encoders.py", "topicsent.interfaces._options"): "the CLI console",
    ("test_cli.py", "topicsent.interfaces._options"): "the CLI's number format",
    ("test_tables.py", "topicsent.interfaces._tables"): "the table printer's formats",
    ("test_server.py", "topicsent.interfaces._server"): "the REST app's settings and limits",
    ("test_topics.py", "topicsent.topics._discover"): "keyword topic names",
    ("test_topics.py", "topicsent.topics._drivers"): "segment polarities",
    ("test_llm.py", "topicsent.llm._templates"): "editing a template file to see which prompt hashes change",
    ("test_assembled_encoders.py", "topicsent.encoders._assembled"): "assembling an encoder folder from wheel chunks",
    ("test_encoder_methods.py", "topicsent.encoders._assembled"): "a stand-in for the assembled encoder folder",
    ("test_models.py", "topicsent.encoders._assembled"): "a stand-in for the assembled encoder folder",
    ("test_models.py", "topicsent.llm._packaged"): "splitting a fake GGUF into part packages",
    ("test_cases.py", "topicsent.topics._analysis"): "proving discovery never runs on refused input (monkeypatched)",
    ("test_cli.py", "topicsent.interfaces.cli._METRIC_COLUMNS"): "every metric the harness writes has a column",
    ("test_runs.py", "topicsent.runs._run"): "interrupting a run between parts (monkeypatched)",
    ("test_server.py", "topicsent.interfaces._jobs"): "the job store behind the REST service",
    ("test_extras.py", "topicsent._extras"): "the optional-dependency helper and its module -> extra table",
    ("test_contract.py", "topicsent.methods._terms"): "setting cached term taggers aside so the determinism check refits",
    ("test_extraction.py", "topicsent.methods._tagger"): "tag encoding and span decoding, the tagger's losses",
    ("test_extraction.py", "topicsent.methods._terms"): "the term dictionary baseline and the saved finder folder",
    ("test_extraction.py", "topicsent.methods._finetuning"): "validation with the tag-only selection loss",
    ("test_extraction.py", "topicsent.report._render"): "the report's aspect and opinion marks",
    ("test_labelling.py", "topicsent.interfaces._server"): "the REST app with a projects folder of the test's own",
    ("test_cli.py", "topicsent.methods._registry"): "counting spec parses through the CLI (monkeypatched)",
    ("test_registry.py", "topicsent.methods._registry"): "seeding a method object",
    ("test_mabsa.py", "topicsent.data._mabsa"): "reading M-ABSA lines and merging one sentence's triplets",
    ("test_onnx_runtime.py", "topicsent.methods._onnx_runtime"): "the ONNX session wrapper and export failures (monkeypatched)",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of a topicsent module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "topicsent":  # ``from topicsent.llm import _templates`` counts as private
                found.append((node.lineno, node.module))
                found += [
                    (node.lineno, f"{node.module}.{a.name}")
                    for a in node.names
                    if a.name.startswith("_") and a.name != "__version__"
                ]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "topicsent"]
    return found


def _layer(module: str) -> int | None:
    """The layer of ``topicsent.X...`` (None for the package face ``topicsent`` and ``__main__``)."""
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 1 else None


def _source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_every_folder_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _source_files()} - {"__init__"}
    assert tops <= set(LAYER), f"give these a layer in LAYERS: {sorted(tops - set(LAYER))}"


def test_imports_only_point_down():
    upward = []
    for path in _source_files():
        source = _module_name(path)
        if source == "topicsent":
            continue  # the package face re-exports from every layer, lazily
        for line, target in _imported(path):
            below = _layer(target)
            if below is None or below > _layer(source):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {source} imports {target}")
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_llm_backend_layer_knows_no_method():
    """The backend layer is plumbing: no prompt, answer parser or method inside it."""
    names = {p.stem for p in (PACKAGE / "llm").glob("*.py")}
    assert not names & {"_answer", "_prompts", "_examples", "_sft", "_naming", "_teacher"}
    for path in (PACKAGE / "llm").glob("*.py"):
        assert all(_layer(target) <= LAYER["llm"] for _, target in _imported(path)), path


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "scripts"])
def test_outside_code_imports_public_modules(folder):
    private = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, target in _imported(path):
            if (path.name, target) in INTERNAL_TESTS and folder == "tests":
                continue
            if any(part.startswith("_") and part != "__main__" for part in target.split(".")):
                private.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not private, "imports of private modules (use the public module, or list the test in INTERNAL_TESTS):\n" + "\n".join(
        private
    )


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The check itself can fail: a data module importing a method is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from topicsent.methods import make_method\n", encoding="utf-8")
    assert [(line, _layer(target)) for line, target in _imported(bad)] == [(2, LAYER["methods"])]
    assert LAYER["methods"] > LAYER["data"]
