"""Fitted torch modules run by ONNX Runtime, optionally with int8 weights.

A fine-tuned model is exported once (``torch.onnx.export``, every input axis dynamic:
batch, tokens, terms) and then called exactly like the torch module it came from:
keyword tensors in, the same dict of named tensors out. So the prediction code of both
``finetune`` designs (the transformers classifier of BERT-pair and ratings, and the
one-pass encoder with its heads) runs unchanged on either runtime.

Why: on a CPU, ONNX Runtime's fused kernels run the same fp32 graph faster than eager
torch, and int8 dynamic quantisation (``quantize_dynamic``: int8 weights of the matrix
products, activations quantised per batch) roughly halves the time again at a small
cost in agreement. Per-channel weight scales halved the int8 error of MiniLM's outputs
against per-tensor ones here, at the same speed; ORT's pre-processing pass changed neither.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topicsent._extras import require
from topicsent._progress import progress_bar
from topicsent.encoders._transformer import usable_cpus

EXTRA = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


def require_onnx(purpose: str = "runtime='onnx'") -> None:
    """Refuse early, in one line, when the ``onnx`` extra is missing.

    Raises
    ------
    MissingExtraError
        ``runtime='onnx' needs onnxruntime, which is not installed: install
        topicsent[onnx] ...`` (or onnx, onnxscript: the exporter's packages).
    """
    for module in ("onnxruntime", "onnx", "onnxscript"):
        require(module, EXTRA, needed_by=purpose)


class _Positional(nn.Module):
    """``module`` as torch.export traces it: positional tensors in (in the order of
    ``input_names``), a tuple of tensors out (in the order of ``output_names``)."""

    def __init__(self, module: nn.Module, input_names: list[str], output_names: list[str]) -> None:
        super().__init__()
        self.module, self.input_names, self.output_names = module, input_names, output_names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.module(**dict(zip(self.input_names, tensors, strict=True)))
        return tuple(outputs[name] for name in self.output_names)


def export_onnx(module, example_inputs: Mapping[str, Any], path: Path) -> None:
    """Write ``module``'s forward as one ONNX file.

    Parameters
    ----------
    module : torch.nn.Module
        Called with keyword tensors; returns a mapping of tensors (a dict, or a
        transformers ``ModelOutput``), whose names become the graph's outputs.
    example_inputs : mapping of str to torch.Tensor
        One batch, two or more rows (and terms) long: an axis of size 1 would be traced
        as a constant.
    path : pathlib.Path
        The ``.onnx`` file written (weights inside it; fine below 2 GB).

    Raises
    ------
    TypeError
        When ``module`` does not return a mapping of tensors.
    """
    from torch.export import Dim

    names = list(example_inputs)
    device = next(module.parameters()).device
    inputs = tuple(example_inputs[name].to(device) for name in names)
    module.eval()
    with torch.no_grad():
        outputs = module(**dict(zip(names, inputs, strict=True)))
    if not isinstance(outputs, Mapping):
        kind = type(outputs).__name__
        raise TypeError(f"export_onnx exports modules that return a mapping of tensors; {type(module).__name__} returns {kind}")
    output_names = [name for name, value in outputs.items() if isinstance(value, torch.Tensor)]
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            _Positional(module, names, output_names).eval(), inputs, input_names=names, output_names=output_names,
            dynamic_shapes=(tuple({axis: Dim.DYNAMIC for axis in range(t.dim())} for t in inputs),),
            # optimize (the default) folds the weights' transposes into constants: without it
            # quantize_dynamic finds few weights to quantise (measured: int8 no faster than fp32)
            dynamo=True, external_data=False, verbose=False,
        )  # fmt: skip
        program.save(str(path), external_data=False)


def quantize_int8(source: Path, target: Path) -> None:
    """Int8 weights (per output channel) for the matrix products of ``source``; activations
    are quantised per batch at run time (dynamic quantisation, no calibration data)."""
    quantization = require("onnxruntime.quantization", EXTRA, needed_by="runtime='onnx'")
    with _quiet():
        quantization.quantize_dynamic(source, target, weight_type=quantization.QuantType.QInt8, per_channel=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and quantiser's notices (torch.export's warnings, optional
    torchvision ops, "consider pre-processing": measured, no gain) are not the user's
    to act on; errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def onnx_file(
    module, example_inputs: Mapping[str, Any], *, quantize: bool, saved: Path | None, scratch: Path, description: str
) -> Path:
    """The ONNX file to run: ``model.int8.onnx`` (``quantize``) or ``model.onnx`` (fp32),
    taken from the folder ``saved`` with the model when it holds it (a loaded model
    exports nothing), else made once in ``scratch``: exported from ``module`` (on
    ``example_inputs``), then quantised from the fp32 file when asked. ``saved`` is
    only read, never written."""

    def find(name: str) -> Path | None:
        return next((folder / name for folder in (saved, scratch) if folder and (folder / name).is_file()), None)

    wanted = INT8_FILE if quantize else FP32_FILE
    if (ready := find(wanted)) is not None:
        return ready
    fp32 = find(FP32_FILE)
    if fp32 is None:
        require_onnx()
        fp32 = scratch / FP32_FILE
        with progress_bar(f"{description}: export to ONNX (once)", total=None):
            export_onnx(module, example_inputs, fp32)
    if quantize:
        with progress_bar(f"{description}: int8 quantisation (once)", total=None):
            quantize_int8(fp32, scratch / INT8_FILE)
    return scratch / wanted


class OnnxModule:
    """An ONNX file run by ONNX Runtime, called like the torch module it was exported from.

    Parameters
    ----------
    path : pathlib.Path
        An ``.onnx`` file written by :func:`export_onnx` (or quantised from one).

    The session uses as many intra-op threads as the CPUs this process may run on (as
    the torch path does), on the CPU execution provider.

    Raises
    ------
    InvalidParameterError
        When onnxruntime is not installed (the ``pip install`` line).
    """

    def __init__(self, path: Path) -> None:
        ort = require("onnxruntime", EXTRA, needed_by="runtime='onnx'")
        options = ort.SessionOptions()
        options.intra_op_num_threads = usable_cpus()
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [node.name for node in self.session.get_outputs()]

    def __call__(self, **inputs) -> dict[str, Any]:
        """The graph's outputs by name (torch tensors) for keyword tensors; inputs the
        graph does not read (the exporter drops unused ones) are left out."""
        import torch

        feed = {name: inputs[name].detach().cpu().numpy() for name in self.input_names}
        arrays = self.session.run(self.output_names, feed)
        return {name: torch.from_numpy(array) for name, array in zip(self.output_names, arrays, strict=True)}
