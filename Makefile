# Two entry points for a fresh machine (see README):
#   make run    set up, then execute the whole notebook series on the embedded model
#   make test   set up, then run the unit tests and nbval over every notebook
# Both create their own virtual environment in .venv; only Python >= 3.10 is needed beforehand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
OUT ?= outputs
# DeepSpeed builds from source; without build isolation it uses the CPU torch above instead of
# fetching a CUDA one, and DS_BUILD_OPS=0 leaves its CUDA kernels to be compiled on a GPU machine.
DEEPSPEED_SPEC ?= deepspeed==0.19.8

.PHONY: setup model run test unit-tests notebook-tests clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,serving]"
	$(BIN)/python -m pip install --quiet setuptools wheel
	DS_BUILD_OPS=0 $(BIN)/python -m pip install --quiet --no-build-isolation "$(DEEPSPEED_SPEC)"
	touch $@

setup: $(VENV)/.installed

model: setup
	$(BIN)/zephyr-tutorial model

run: model
	$(BIN)/zephyr-tutorial run-notebooks --notebooks notebooks --out $(OUT)

unit-tests: model
	$(BIN)/python -m pytest tests --durations=15

notebook-tests: model
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

test: unit-tests notebook-tests

clean:
	rm -rf $(VENV) $(OUT)
