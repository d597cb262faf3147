"""Reading the files of a saved model, where every kind of damage is one error naming the file.

A model folder can be truncated by a full disk, emptied by a failed copy or edited by
hand. Each reader here validates what it reads (JSON against the structure it must
have, with pydantic in strict mode; arrays against their dtype, shape and finiteness)
and turns whatever a parser raises (``BadZipFile``, ``SafetensorError``, a JSON
decode or recursion error, ``EOFError``) into one :class:`ModelFileError` line naming
the file, instead of a traceback from deep inside numpy or safetensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from topicsent.errors import ModelFileError


@contextmanager
def model_file(path: Path, problem: str = "damaged model file") -> Iterator[None]:
    """Any error reading or checking ``path`` becomes :class:`ModelFileError` naming it.

    Raises
    ------
    ModelFileError
        ``path`` is missing, unreadable or damaged (the cause in one line).
    """
    try:
        yield
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; the model folder is incomplete") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the top level"
        raise ModelFileError(f"{path}: {problem} ({where}: {first['msg']})") from None
    except Exception as error:  # safetensors' SafetensorError is a bare Exception subclass
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ModelFileError(f"{path}: {problem} ({type(error).__name__}: {reason})") from None


def read_json(path: Path, structure: Any, problem: str = "damaged model file") -> Any:
    """``path`` parsed as JSON and validated strictly against ``structure`` (a type such as
    ``list[str]`` or a TypedDict; pydantic strict mode: no string where a number belongs).

    Raises
    ------
    ModelFileError
        The file is missing, not JSON, or of another structure.
    """
    with model_file(path, problem):
        return TypeAdapter(structure).validate_json(path.read_bytes(), strict=True)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (read without pickle), all in memory.

    Raises
    ------
    ModelFileError
        The file is missing, not an npz, truncated, or holds an object array.
    """
    with model_file(path), np.load(path, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


def load_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of a ``.safetensors`` file, each checked finite.

    Raises
    ------
    ModelFileError
        The file is missing, truncated, not safetensors, or holds NaN/infinity.
    """
    from safetensors.torch import load_file

    with model_file(path):
        tensors = load_file(path)
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not tensor.isfinite().all():
                raise ValueError(f"tensor {name!r} holds NaN or infinity")
        return tensors


def check_array(
    path: Path, name: str, array: Any, *, ndim: int, length: int | None = None, kind: str = "f", finite: bool = True
) -> np.ndarray:
    """``array`` (a value called ``name`` in ``path``) with ``ndim`` dimensions, dtype of
    numpy ``kind`` ("f" float; "iu" integer; "f" also takes integers), ``length`` rows
    when given, and no NaN or infinity.

    Raises
    ------
    ModelFileError
        Naming ``path``, ``name`` and what is wrong.
    """
    array = np.asarray(array)
    if array.dtype.kind not in kind + ("iu" if kind == "f" else ""):
        problem = f"dtype {array.dtype}, expected {dict(f='floats', U='text').get(kind, 'integers')}"
    elif array.ndim != ndim:
        problem = f"{array.ndim} dimensions, expected {ndim}"
    elif length is not None and array.shape[0] != length:
        problem = f"length {array.shape[0]}, expected {length}"
    elif finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        problem = "NaN or infinity"
    else:
        return array
    raise ModelFileError(f"{path}: damaged model file ({name!r} has {problem})")
