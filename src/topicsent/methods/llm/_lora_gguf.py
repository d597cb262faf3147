"""A peft LoRA adapter written as a llama.cpp GGUF adapter, so a tuned model runs on llama.cpp.

transformers runs a dequantised fp32 model at ~8 tokens/s on two cores here (every
token reads all the fp32 weights); llama.cpp runs the same base from its 4-bit GGUF at
~50 and constrains the answer to the JSON schema. llama.cpp applies a LoRA adapter
given as a GGUF of ``blk.N.<tensor>.weight.lora_a`` / ``.lora_b`` pairs (the format of
llama.cpp's ``convert_lora_to_gguf.py``); ``gguf`` (the same package transformers reads
GGUF with) writes it. One subtlety: for the ``llama`` architecture llama.cpp stores the
query and key projections with their rows permuted for its rotary layout (transformers
undoes that on load), so the B matrices of those adapters get the same permutation.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from topicsent.errors import InvalidParameterError

PERMUTED_ARCHITECTURES = ("llama",)  # query/key rows reordered by llama.cpp's converter


@cache
def base_architecture(gguf_path: Path) -> tuple[str, int, int, int]:
    """(architecture, blocks, attention heads, key/value heads) of a GGUF model (read once
    per process: parsing the file's index takes seconds, and every curve point exports)."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf_path).fields
    arch = fields["general.architecture"].contents()
    return (
        arch, int(fields[f"{arch}.block_count"].contents()), int(fields[f"{arch}.attention.head_count"].contents()),
        int(fields[f"{arch}.attention.head_count_kv"].contents()),
    )  # fmt: skip


def _permute_rows(matrix: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary row order (``LlamaModel.permute`` of its converter)."""
    return matrix.reshape(heads, 2, matrix.shape[0] // heads // 2, *matrix.shape[1:]).swapaxes(1, 2).reshape(matrix.shape)


def export_lora_gguf(model, base_gguf: Path, path: Path) -> Path:
    """Write ``model``'s (a peft model's) LoRA adapters as a llama.cpp adapter for ``base_gguf``."""
    import gguf
    from peft import get_peft_model_state_dict

    arch, blocks, heads, kv_heads = base_architecture(base_gguf)
    try:
        names = gguf.get_tensor_name_map(next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), blocks)
    except StopIteration:
        raise InvalidParameterError(f"{base_gguf.name}: architecture {arch!r} is unknown to the gguf package") from None
    config = model.peft_config["default"]
    state = {k: v.detach().float().cpu().numpy() for k, v in get_peft_model_state_dict(model).items()}
    writer = gguf.GGUFWriter(path, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.lora_alpha))
    for key in sorted(k for k in state if ".lora_A." in k):
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise InvalidParameterError(f"no llama.cpp tensor for adapter module {module}")
        lora_a, lora_b = state[key], state[key.replace(".lora_A.", ".lora_B.")]
        if arch in PERMUTED_ARCHITECTURES and module.endswith(("q_proj", "k_proj")):
            lora_b = _permute_rows(lora_b, heads if module.endswith("q_proj") else kv_heads)
        writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(lora_a))
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(lora_b))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
