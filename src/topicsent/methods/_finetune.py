"""Fine-tuning a transformer end to end: full, or LoRA adapters (peft).

Aspects use one of two designs. ``pair``: the BERT-pair recipe
(:mod:`topicsent.methods._pair_classifier`), (review, "what do you think of the food?")
-> polarity or ``none``, one encoder pass per (review, aspect). ``attention``: one
encoder pass per review with per-aspect attention heads on its token vectors
(:mod:`topicsent.methods._one_pass`), trained end to end. Ratings use the
review alone, as classification over the scale's ratings or as regression. The base
is a packaged encoder (``all-MiniLM-L6-v2``), a packaged GGUF instruction LLM
(``qwen2.5-coder-0.5b-instruct`` reads Korean; LoRA keeps it trainable on CPU), or a
user's local model directory or ``.gguf`` file.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from topicsent._progress import progress_bar
from topicsent.data import Review
from topicsent.encoders import default_encoder
from topicsent.errors import InvalidParameterError
from topicsent.methods._files import load_tensors, read_json
from topicsent.methods._finetuning import (
    ADAPTATIONS,
    DEVICES,
    MODEL_SUBDIR,
    PRECISIONS,
    BaseModel,
    Batches,
    Checkpoint,
    Example,
    Objective,
    TrainingReport,
    autocast_dtype,
    base_licence,
    encode_examples,
    fit_torch,
    load_checkpoint,
    load_classifier,
    outputs_in_order,
    predict_outputs,
    resolve_base,
    resolve_device,
    save_checkpoint,
    train_classifier,
)
from topicsent.methods._pair_classifier import PairClassifierMethod, auxiliary_sentence, held_out_rows
from topicsent.schema import Task

HEADS_FILE = "heads.safetensors"
#: The exported ONNX file (runtime="onnx") is saved in this folder of the model folder.
ONNX_SUBDIR = "onnx"
#: Texts per prediction batch (length-sorted, so little padding).
PREDICT_BATCH = 64

FULL_LEARNING_RATE = 5e-5
#: LoRA on MiniLM at 5e-4 barely moved (Women's clothing regression QWK 0.042); 2e-3 learned
#: (0.767, and MAMS macro-F1 0.613 vs 0.563). A GGUF LLM base keeps 5e-4, the rate its
#: Korean runs were measured with.
LORA_LEARNING_RATE = {"encoder": 2e-3, "llm": 5e-4}


class FinetuneMethod(PairClassifierMethod):
    """A fine-tuned transformer classifier (pair input for aspects, review for ratings).

    Parameters
    ----------
    base : str or None, default=None
        Packaged encoder or LLM name, model directory, or ``.gguf`` file; None: the
        default encoder of the training data's language (``all-MiniLM-L6-v2`` for
        English, ``multilingual-e5-small`` for Korean and others). Korean:
        ``multilingual-e5-small`` (with ``freeze_embeddings=True``),
        ``qwen2.5-coder-0.5b-instruct`` (with ``adaptation="lora"``) or your own
        Korean encoder directory (e.g. a KLUE or KcELECTRA checkpoint).
    design : {"pair", "attention"}, default="pair"
        Aspects (ACSA, ATSA): ``pair`` runs the encoder once per (review, aspect
        question) (BERT-pair); ``attention`` once per review, with per-category (or
        per-term) attention heads on its token vectors, trained end to end: every
        category's polarity and mention from one pass. Ratings read the review alone
        either way.
    adaptation : {"full", "lora"}, default="full"
        Train every weight, or only rank-``lora_rank`` adapters and the new head
        (``design="pair"`` and ratings).
    train_layers : int or None, default=None
        ``design="attention"``: train only the top ``train_layers`` transformer layers
        (and the heads); the layers below run without gradients, which makes a step
        cheaper. None trains every layer and the embeddings.
    layer_decay : float, default=1.0
        ``design="attention"``: each layer's learning rate is ``layer_decay`` times the
        one above (layer-wise learning-rate decay); the heads train at 1e-3.
    class_weight_power : float, default=0.0
        ``design="attention"``: polarity classes weighted by ``frequency ** -power``
        (0.5 lifts the rare ``neutral``/``conflict``; 0: unweighted).
    hidden : int, default=256
        ``design="attention"``: hidden units of the attention heads.
    freeze_embeddings : bool, default=False
        Full fine-tuning without updating the token embeddings: for multilingual bases
        (``multilingual-e5-small``: 96M of its 118M weights are a 250k-token table, most
        of it unused by one dataset), it cuts the optimiser's work per step severalfold.
    lora_rank : int, default=8
    epochs : int, default=3
        Most epochs; early stopping on held-out training reviews keeps the best.
    patience : int, default=1
        Epochs without a better ``monitor`` value before stopping.
    monitor : {"loss", "accuracy"}, default="loss"
        What picks the epoch kept: the lowest validation loss, or the highest
        validation accuracy (polarity accuracy; ties to the lower loss).
    train_batch_size : int, default=16
    learning_rate : float or None, default=None
        None: 5e-5 for full fine-tuning; for LoRA, 2e-3 on an encoder and 5e-4 on a GGUF
        LLM base.
    max_length : int, default=128
        Tokens per input (review + question); longer reviews are truncated.
    negative_ratio : float, default=0.5
        ACSA: ``none`` examples (unmentioned categories) per labelled aspect.
    examples_per_class : int or None, default=None
        Train on at most this many examples of each class (learning curves, large sets).
    rating_model : {"classify", "regress"}, default="classify"
    device : {"auto", "cpu", "cuda"} or "cuda:N", default="auto"
        ``auto``: a CUDA GPU when torch sees one, else the CPU.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``auto``: bfloat16 autocast where the hardware has it (a recent GPU, or a CPU
        with AVX512-BF16/AMX), else fp32. Weights stay fp32.
    checkpoint_dir : str or None, default=None
        A folder for the training state after every epoch; training with the same folder
        again continues from the last finished epoch (a killed run loses at most one).
    runtime : {"torch", "onnx"}, default="torch"
        What predicts (training is torch either way). ``onnx``: the fitted model
        (encoder and heads, either design) is exported once to ONNX and run by ONNX
        Runtime on the CPU, in fp32 whatever ``precision`` says; the file is saved with
        the model, so a loaded model exports nothing. Needs ``pip install
        'topicsent[onnx]'``. Switch a fitted or loaded model with
        ``set_params(runtime=...)``: no refit.
    quantize : bool, default=False
        With ``runtime="onnx"``: int8 weights (per channel) for the matrix products,
        activations quantised per batch (ONNX Runtime dynamic quantisation): faster,
        at a small cost in agreement with the fp32 model.
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
    """

    name = "finetune"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    batch_size = 256
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "design": ("pair", "attention"),
        "precision": PRECISIONS,
        "layer_decay": "positive",
        "hidden": "count",
        "adaptation": ADAPTATIONS,
        "freeze_embeddings": (False, True),
        "rating_model": ("classify", "regress"),
        "lora_rank": "count",
        "epochs": "count",
        "patience": "count",
        "monitor": ("loss", "accuracy"),
        "train_batch_size": "count",
        "max_length": "count",
        "negative_ratio": "positive",
        "learning_rate": "optional positive",
        "examples_per_class": "optional count",
        "train_layers": "optional count",
        "class_weight_power": "non-negative",
        "runtime": ("torch", "onnx"),
        "quantize": (False, True),
    }

    def __init__(
        self,
        *,
        base: str | None = None,
        design: str = "pair",
        adaptation: str = "full",
        train_layers: int | None = None,
        layer_decay: float = 1.0,
        class_weight_power: float = 0.0,
        hidden: int = 256,
        freeze_embeddings: bool = False,
        lora_rank: int = 8,
        epochs: int = 3,
        patience: int = 1,
        monitor: str = "loss",
        train_batch_size: int = 16,
        learning_rate: float | None = None,
        max_length: int = 128,
        negative_ratio: float = 0.5,
        examples_per_class: int | None = None,
        rating_model: str = "classify",
        device: str = "auto",
        precision: str = "auto",
        checkpoint_dir: str | None = None,
        runtime: str = "torch",
        quantize: bool = False,
        term_finder: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.base = base
        self.design = design
        self.adaptation = adaptation
        self.train_layers = train_layers
        self.layer_decay = layer_decay
        self.class_weight_power = class_weight_power
        self.hidden = hidden
        self.freeze_embeddings = freeze_embeddings
        self.lora_rank = lora_rank
        self.epochs = epochs
        self.patience = patience
        self.monitor = monitor
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.negative_ratio = negative_ratio
        self.examples_per_class = examples_per_class
        self.rating_model = rating_model
        self.device = device
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.runtime = runtime
        self.quantize = quantize
        self.term_finder = term_finder
        self.random_state = random_state

    @property
    def base_name(self) -> str:
        """The base: the one given, else the default encoder for the training language."""
        return self.base or default_encoder(getattr(self, "language_", None))

    @property
    def model_name(self) -> str:
        runtime = "" if self.runtime == "torch" else f"; ONNX Runtime {'int8' if self.quantize else 'fp32'}"
        if self.design == "attention":
            layers = "all layers" if self.train_layers is None else f"top {self.train_layers} layers"
            return f"{self.base_name} (one pass, {layers}{runtime})"
        return f"{self.base_name} ({self.adaptation}{runtime})"

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", str(self.device)):
            raise InvalidParameterError(
                f"The 'device' parameter of {type(self).__name__} must be one of {DEVICES} or 'cuda:N'. Got {self.device!r}."
            )
        if self.design == "attention" and self.adaptation != "full":
            raise InvalidParameterError(
                "design='attention' trains the encoder's top layers (train_layers); adaptation='lora' is for design='pair'"
            )
        if self.quantize and self.runtime != "onnx":
            raise InvalidParameterError("quantize=True is ONNX Runtime's int8 quantisation: set runtime='onnx' too")

    # ----- training ----------------------------------------------------------------------------

    def _fit(self, reviews) -> None:
        if self.runtime == "onnx":  # before training, not after it
            from topicsent.methods._onnx_runtime import require_onnx

            require_onnx()
        for stale in ("_onnx_saved", "_onnx_scratch", "_predictor_cache"):  # the weights this fit replaces
            self.__dict__.pop(stale, None)
        self.training_data_ = f"{reviews.name} ({len(reviews):,} reviews)"
        super()._fit(reviews)

    def _train(self, examples: list[Example], targets: np.ndarray, review_ids: list[str], n_outputs: int) -> None:
        train_rows, held_rows = held_out_rows(review_ids, self.random_state)
        base = resolve_base(self.base_name)
        with progress_bar(f"{self.name}: load {self.base_name}", total=None):
            self.model_, self.tokenizer_ = load_classifier(
                base, n_outputs, adaptation=self.adaptation, lora_rank=self.lora_rank, seed=self.random_state
            )
        if self.freeze_embeddings:
            self.model_.get_input_embeddings().requires_grad_(False)
        self.n_outputs_ = n_outputs
        self.training_report_: TrainingReport = train_classifier(
            self.model_, self.tokenizer_,
            ([examples[i] for i in train_rows], targets[train_rows]),
            ([examples[i] for i in held_rows], targets[held_rows]),
            epochs=self.epochs, batch_size=self.train_batch_size,
            learning_rate=self.learning_rate or self._default_learning_rate(base),
            max_length=self.max_length, patience=self.patience, monitor=self.monitor, seed=self.random_state,
            description=f"{self.name}: {self.adaptation} fine-tuning on {len(train_rows):,} examples",
            checkpoint=self._checkpoint([a + (b or "") for a, b in examples]), **self._placement(),
        )  # fmt: skip
        self.n_train_examples_ = len(examples)

    def _placement(self) -> dict[str, Any]:
        """Where the model runs (device) and the autocast dtype (precision) of fit_torch."""
        device = resolve_device(self.device)
        if getattr(self, "model_", None) is not None:
            self.model_.to(device)
        return {"device": device, "precision": autocast_dtype(self.precision, device)}

    def _checkpoint(self, texts: Sequence[str]) -> Checkpoint | None:
        """Per-epoch training state in ``checkpoint_dir/TASK``, fingerprinted by the
        parameters that shape training, the task and the training texts. ``epochs`` and
        ``patience`` are left out: a run resumed with more epochs continues training; so
        are ``runtime`` and ``quantize``, which only choose what predicts afterwards."""
        if self.checkpoint_dir is None:
            return None
        import hashlib

        not_shaping = {"checkpoint_dir", "device", "epochs", "patience", "runtime", "quantize"}
        shaping = {k: v for k, v in self.get_params().items() if k not in not_shaping}
        digest = hashlib.sha256(json.dumps([shaping, self.task_.value], sort_keys=True, default=str).encode())
        for text in texts:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        return Checkpoint(Path(self.checkpoint_dir) / self.task_.value, digest.hexdigest())

    def _default_learning_rate(self, base: BaseModel) -> float:
        if self.adaptation == "full":
            return FULL_LEARNING_RATE
        return LORA_LEARNING_RATE["llm" if base.gguf_file else "encoder"]

    def _outputs(self, examples: list[Example]) -> np.ndarray:
        return predict_outputs(
            self._predictor(), self.tokenizer_, examples, batch_size=PREDICT_BATCH, max_length=self.max_length,
            **self._placement(),
        )  # fmt: skip

    # ----- the runtime that predicts (runtime="torch" or "onnx") ----------------------------------

    def _predictor(self):
        """What prediction calls: the torch model, or its ONNX Runtime session (exported
        once, quantised once when asked), which takes and returns the same names. When
        the runtime changes (set_params), outputs remembered from the other one are dropped."""
        self._validate_params()  # set_params does not check; a wrong runtime would predict with torch
        wanted = (self.runtime, self.quantize)
        cached = getattr(self, "_predictor_cache", None)
        if cached is not None and cached[0] == wanted:
            return cached[1]
        self.__dict__.pop("_recent_outputs", None)
        predictor = self.model_
        if self.runtime == "onnx":
            from topicsent.methods._onnx_runtime import OnnxModule, onnx_file

            if getattr(self, "_onnx_scratch", None) is None:  # removed with this object
                self._onnx_scratch = tempfile.TemporaryDirectory(prefix="topicsent-onnx-")
            path = onnx_file(
                self.model_, self._example_inputs(), quantize=self.quantize, saved=getattr(self, "_onnx_saved", None),
                scratch=Path(self._onnx_scratch.name), description=self.name,
            )  # fmt: skip
            predictor = OnnxModule(path)
        self._predictor_cache = (wanted, predictor)
        return predictor

    def _example_inputs(self) -> dict[str, Any]:
        """One batch of model inputs to export with: two texts (three terms for ATSA),
        so no axis has size 1 (torch.export would fix it) or equals another."""
        texts = ["The pasta was great but the waiter was rude to us.", "Lovely wine."]
        if self._is_one_pass():
            spans = [[(4, 9), (28, 34)], [(7, 11)]] if self.task_ is Task.ATSA else None
            return self._one_pass_inputs(texts, spans, [0, 1])
        question = None if self.task_ is Task.RATING else auxiliary_sentence("food", self.language_)
        return encode_examples(self.tokenizer_, [(text, question) for text in texts], self.max_length)

    # ----- the one-pass design (design="attention") --------------------------------------------

    def _fit_polarity(self, pairs, labels: list[str]) -> None:
        if self.design == "pair":
            super()._fit_polarity(pairs, labels)
            return
        self.polarity_classes_ = sorted(set(labels))
        if self.task_ is Task.ATSA:  # one row per review, holding all its terms
            label_ids = np.array([self.polarity_classes_.index(label) for label in labels])
            reviews, spans, rows = _terms_by_review(pairs)
            targets = {"polarity": [label_ids[term_rows] for term_rows in rows]}
            self._train_one_pass([r.text for r in reviews], spans, targets, [r.id for r in reviews])
        # ACSA trains in _fit_detector, which sees every review with its aspects and mentions

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        if self.design == "pair":
            return
        from topicsent.methods._one_pass import IGNORE

        index, label_id = self.category_index, {label: i for i, label in enumerate(self.polarity_classes_)}
        polarity = np.full(mentioned.shape, IGNORE)
        for row, review in enumerate(reviews):
            for aspect in review.aspects:
                polarity[row, index[aspect.name]] = label_id[aspect.polarity]
        targets = {"polarity": polarity, "detection": mentioned.astype(np.float32)}
        self._train_one_pass([review.text for review in reviews], None, targets, [review.id for review in reviews])

    def _train_one_pass(self, texts: list[str], spans: list[list] | None, targets: dict[str, Any], review_ids: list[str]) -> None:
        """Train the encoder (top ``train_layers``) and heads on reviews (``texts``; for
        ATSA ``spans``, each review's term spans, and one target per term), holding out
        10% of the reviews for early stopping."""
        from topicsent.methods import _one_pass

        train_rows, held_rows = held_out_rows(review_ids, self.random_state)
        self._load_one_pass(resolve_base(self.base_name).directory)
        groups = _one_pass.layerwise_groups(
            self.model_, learning_rate=self.learning_rate or FULL_LEARNING_RATE,
            train_layers=self.train_layers, layer_decay=self.layer_decay,
        )  # fmt: skip
        self._require_training_memory(groups)
        if "detection" in targets:
            self.model_.start_detection_at(float(targets["detection"][train_rows].mean()))
        polarity = _rows_of(targets["polarity"], range(len(texts)))
        weights = _one_pass.class_weights(polarity, len(self.polarity_classes_), self.class_weight_power)
        loss = _one_pass.term_loss(weights) if self.task_ is Task.ATSA else _one_pass.acsa_loss(1.0, weights)

        def batches(subset: list[int]) -> Batches:
            return Batches(
                [len(texts[i]) for i in subset],
                lambda batch: self._one_pass_inputs(texts, spans, [subset[i] for i in batch]),
                lambda batch: {k: _as_tensor(_rows_of(v, [subset[i] for i in batch])) for k, v in targets.items()},
            )

        trained = "every layer" if self.train_layers is None else f"the top {self.train_layers} layers"
        self.training_report_ = fit_torch(
            self.model_, batches(train_rows), batches(held_rows), Objective(loss, _one_pass.polarity_hits), groups,
            epochs=self.epochs, batch_size=self.train_batch_size, patience=self.patience, monitor=self.monitor,
            seed=self.random_state, description=f"{self.name}: one-pass fine-tuning of {trained} on {len(train_rows):,} reviews",
            checkpoint=self._checkpoint(texts), **self._placement(),
        )  # fmt: skip
        self.n_outputs_ = len(self.polarity_classes_)
        self.n_train_examples_ = len(polarity)

    def _load_one_pass(self, directory: Path) -> None:
        """The encoder from ``directory`` and new heads (seeded) around it."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        from topicsent.encoders._transformer import prepare_transformers
        from topicsent.methods._one_pass import OnePassAspectModel

        prepare_transformers()
        with progress_bar(f"{self.name}: load {self.base_name}", total=None):
            self.tokenizer_ = AutoTokenizer.from_pretrained(directory)
            encoder = AutoModel.from_pretrained(directory, dtype=torch.float32, use_safetensors=True)
        torch.manual_seed(self.random_state)
        n_categories = len(self.categories) if self.task_ is Task.ACSA else 0
        self.model_ = OnePassAspectModel(encoder, len(self.polarity_classes_), n_categories, hidden=self.hidden)

    def _require_training_memory(self, groups: list[dict[str, Any]]) -> None:
        """Refuse before training when weights, gradients, AdamW moments and the
        activations of the trained layers would not fit in memory."""
        from topicsent.encoders._assembled import require_memory

        weights = sum(p.numel() for p in self.model_.parameters())
        trained = sum(p.numel() for group in groups for p in group["params"])
        layers = len(groups) - 1
        activations = self.train_batch_size * self.max_length * self.model_.encoder.config.hidden_size * layers * 4 * 24
        require_memory(f"fine-tuning {self.base_name} ({trained / 1e6:,.0f}M of {weights / 1e6:,.0f}M weights trained)",
                       weights * 4 + trained * 12 + activations + 2**30,
                       "use a smaller base, a smaller train_layers, train_batch_size or max_length")  # fmt: skip

    def _one_pass_inputs(self, texts: list[str], spans: list[list] | None, rows: list[int]) -> dict[str, Any]:
        """Model inputs for the reviews at ``rows`` (and their terms' spans, ATSA)."""
        from topicsent.methods._one_pass import encode_texts

        return encode_texts(self.tokenizer_, [texts[i] for i in rows], spans and [spans[i] for i in rows], self.max_length)

    def _one_pass_outputs(self, texts: list[str], spans: list[list] | None = None) -> dict[str, np.ndarray]:
        """Polarity probabilities (one row per text for ACSA, ``(n, n_categories,
        n_polarities)``; one per term for ATSA) and ACSA mention probabilities."""
        from scipy.special import expit, softmax

        outputs = outputs_in_order(
            self._predictor(), [len(text) for text in texts],
            lambda batch: self._one_pass_inputs(texts, spans, batch),
            batch_size=PREDICT_BATCH, outputs_per_row=spans and [len(s) for s in spans], **self._placement(),
        )  # fmt: skip
        found = {"polarity": softmax(outputs["polarity"], axis=-1)}
        if "detection" in outputs:
            found["detection"] = expit(outputs["detection"])
        return found

    def _review_outputs(self, reviews: Sequence[Review]) -> dict[str, np.ndarray]:
        """ACSA outputs per distinct review text, remembered for the next call in the same
        batch (detection, then the polarity of the detected categories) in the attribute
        the pair design uses, which a new fit drops."""
        texts = list(dict.fromkeys(review.text for review in reviews))
        recent = getattr(self, "_recent_outputs", {})
        missing = [text for text in texts if text not in recent]
        if missing:
            found = self._one_pass_outputs(missing)
            recent = recent | {text: {k: v[i] for k, v in found.items()} for i, text in enumerate(missing)}
        self._recent_outputs = {text: recent[text] for text in texts}
        return {k: np.stack([self._recent_outputs[r.text][k] for r in reviews]) for k in ("polarity", "detection")}

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        self._predictor()  # first: after a runtime switch, outputs remembered from the other one are dropped
        if self.design == "pair":
            return super()._detect_proba(reviews)
        return self._review_outputs(reviews)["detection"]

    def _polarity_proba(self, pairs) -> np.ndarray:
        self._predictor()  # first: after a runtime switch, outputs remembered from the other one are dropped
        if self.design == "pair":
            return super()._polarity_proba(pairs)
        if self.task_ is Task.ATSA:
            reviews, spans, rows = _terms_by_review(pairs)
            by_review = self._one_pass_outputs([review.text for review in reviews], spans)["polarity"]
            proba = np.empty_like(by_review)
            proba[np.concatenate(rows)] = by_review  # back from review order to pair order
            return proba
        polarity = self._review_outputs([review for review, _ in pairs])["polarity"]
        index = self.category_index
        return polarity[np.arange(len(pairs)), [index[aspect.name] for _, aspect in pairs]]

    def _fit_pair_model(self, examples: list[Example], targets: np.ndarray, review_ids: list[str]) -> None:
        self._train(examples, targets, review_ids, len(self.pair_classes_))

    def _pair_model_proba(self, examples: list[Example]) -> np.ndarray:
        from scipy.special import softmax

        return softmax(self._outputs(examples), axis=1)

    # ----- ratings -----------------------------------------------------------------------------

    def _rating_bounds(self) -> tuple[float, float]:
        return float(self.classes_[0]), float(self.classes_[-1])

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        reviews, ratings = self._rating_sample(reviews, ratings)
        examples: list[Example] = [(review.text, None) for review in reviews]
        if self.rating_model == "classify":
            targets = np.searchsorted(self.classes_, ratings)
            self._train(examples, targets, [r.id for r in reviews], len(self.classes_))
        else:
            low, high = self._rating_bounds()
            self._train(examples, ((ratings - low) / (high - low)).astype(np.float32), [r.id for r in reviews], 1)

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.rating_model == "regress":
            return super()._rating_proba(reviews)
        from scipy.special import softmax

        return softmax(self._outputs([(r.text, None) for r in reviews]), axis=1)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.rating_model == "classify":
            proba = self._rating_proba(reviews)
            return self.classes_[proba.argmax(axis=1)], proba.max(axis=1)
        low, high = self._rating_bounds()
        scaled = self._outputs([(r.text, None) for r in reviews])[:, 0]
        ratings = np.clip(np.rint(low + scaled * (high - low)), low, high)
        return self.classes_[np.searchsorted(self.classes_, ratings)], None

    # ----- persistence -------------------------------------------------------------------------

    def _save_models(self, directory: Path) -> None:
        facts = {
            "base": self.base_name, "design": self.design, "adaptation": self.adaptation, "task": self.task_.value,
            "n_outputs": self.n_outputs_,
            "classes": self.pair_classes_ if self.task_ is not Task.RATING else [int(c) for c in self.classes_],
            "training_examples": self.n_train_examples_, "training_data": self.training_data_, **self.training_report_.to_dict(),
        }  # fmt: skip
        if self._is_one_pass():
            from safetensors.torch import save_file

            heads = {k: v.contiguous() for k, v in self.model_.state_dict().items() if not k.startswith("encoder.")}
            save_checkpoint(self.model_.encoder, self.tokenizer_, directory, self._model_card(facts), facts)
            save_file(heads, directory / MODEL_SUBDIR / HEADS_FILE)
        else:
            save_checkpoint(self.model_, self.tokenizer_, directory, self._model_card(facts), facts)
        self._save_onnx(directory / MODEL_SUBDIR / ONNX_SUBDIR)

    def _save_onnx(self, folder: Path) -> None:
        """runtime="onnx": the ONNX file that predicts (fp32 or int8), so loading exports
        nothing; other files of the folder (an earlier save's) are removed."""
        keep = None
        if self.runtime == "onnx":
            source = self._predictor().path
            keep = folder / source.name
            folder.mkdir(exist_ok=True)
            if source.resolve() != keep.resolve():  # not saving over the folder it was loaded from
                shutil.copyfile(source, keep.with_suffix(".tmp"))
                keep.with_suffix(".tmp").replace(keep)
        for old in folder.glob("*.onnx") if folder.is_dir() else []:
            if old != keep:
                old.unlink()

    def _is_one_pass(self) -> bool:
        return self.design == "attention" and self.task_ is not Task.RATING

    def _load_models(self, directory: Path) -> None:
        facts = read_json(directory / MODEL_SUBDIR / "training.json", dict[str, Any])
        self.n_outputs_, self.n_train_examples_ = facts["n_outputs"], facts["training_examples"]
        self.training_data_ = facts["training_data"]
        self.training_report_ = TrainingReport(facts["best_epoch"], facts["curve"])
        if self._is_one_pass():
            from topicsent.encoders._transformer import require_safetensors

            require_safetensors(directory / MODEL_SUBDIR)
            self._load_one_pass(directory / MODEL_SUBDIR)
            self.model_.load_state_dict(load_tensors(directory / MODEL_SUBDIR / HEADS_FILE), strict=False)
            self.model_.eval()
        else:
            self.model_, self.tokenizer_ = load_checkpoint(
                directory, self.base_name, adaptation=self.adaptation, n_outputs=self.n_outputs_
            )
        if (directory / MODEL_SUBDIR / ONNX_SUBDIR).is_dir():
            self._onnx_saved = directory / MODEL_SUBDIR / ONNX_SUBDIR

    def _runtime_words(self) -> str:
        if self.runtime == "torch":
            return "torch (eager)"
        if self.quantize:
            return (f"ONNX Runtime, int8 dynamic quantisation (weights per channel) of the exported graph "
                    f"`{MODEL_SUBDIR}/{ONNX_SUBDIR}/model.int8.onnx`")  # fmt: skip
        return f"ONNX Runtime, fp32, the exported graph `{MODEL_SUBDIR}/{ONNX_SUBDIR}/model.onnx`"

    def _model_card(self, facts: dict[str, Any]) -> str:
        curve = "\n".join(
            f"| {row['epoch']} | {row['validation_loss']:.4f} | {row['validation_accuracy']:.4f} |" for row in facts["curve"]
        )
        return f"""# topicsent `finetune` model

- Base model: `{self.base_name}` (licence: {base_licence(self.base_name)}),
  {"all weights fine-tuned" if self.adaptation == "full" else f"LoRA adapters (rank {self.lora_rank}) and a new head"}.
- Task: `{facts["task"]}`; classes: {", ".join(map(str, facts["classes"]))}.
- Training data: {facts["training_data"]}, {facts["training_examples"]:,} examples,
  10% of the training reviews held out for early stopping; best epoch {facts["best_epoch"]}.
- Runtime: {self._runtime_words()}.
- Parameters: `{json.dumps(self.get_params())}`.
- Licence of this checkpoint: the base model's licence applies to the weights; check the
  training data's licence before redistributing.

| epoch | validation loss | validation accuracy |
|---|---|---|
{curve}

Load with `topicsent predict --model DIR reviews.csv` or
`topicsent.methods.BaseMethod.load(DIR)`.
"""


def _span(aspect) -> tuple[int, int] | None:
    return (aspect.start, aspect.end) if aspect.start is not None and aspect.end is not None else None


def _terms_by_review(pairs) -> tuple[list[Review], list[list[tuple[int, int] | None]], list[list[int]]]:
    """(review, term) pairs grouped by review: the distinct reviews, each one's term spans,
    and each one's pair rows (so outputs in review order map back to pair order)."""
    index: dict[str, int] = {}
    reviews: list[Review] = []
    spans: list[list[tuple[int, int] | None]] = []
    rows: list[list[int]] = []
    for row, (review, aspect) in enumerate(pairs):
        if review.id not in index:
            index[review.id] = len(reviews)
            reviews.append(review)
            spans.append([])
            rows.append([])
        spans[index[review.id]].append(_span(aspect))
        rows[index[review.id]].append(row)
    return reviews, spans, rows


def _rows_of(values: Any, rows) -> np.ndarray:
    """Targets of some reviews: rows of an array, or the concatenated per-review arrays
    of a list (ATSA: one target per term)."""
    if isinstance(values, list):
        return np.concatenate([values[i] for i in rows])
    return values[list(rows)]


def _as_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))
