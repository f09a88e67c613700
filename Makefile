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
# Its version, like every other, comes from the lock.
DEEPSPEED_SPEC ?= deepspeed
# The exact versions that passed `make test` (pip constraints; pyproject.toml keeps the ranges). `make lock`
# writes it, every install below obeys it, tests/test_lock.py checks the venv against it.
LOCK ?= requirements/lock.txt
LOCK_VENV ?= .venv-lock
UPGRADE_VENV ?= .venv-upgrade

.PHONY: setup model run test unit-tests lint notebook-tests browser lock upgrade-check clean

# $(call install,VENV,PIP_OPTIONS): the one install sequence of make setup, make lock and make upgrade-check.
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet $(2) --upgrade pip
	$(1)/bin/python -m pip install --quiet $(2) "$(TORCH_SPEC)"
	$(1)/bin/python -m pip install --quiet $(2) -e ".[dev,serving]"
	$(1)/bin/python -m pip install --quiet $(2) setuptools wheel
	DS_BUILD_OPS=0 $(1)/bin/python -m pip install --quiet $(2) --no-build-isolation "$(DEEPSPEED_SPEC)"
endef

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(call install,$(VENV),-c $(LOCK))
	touch $@

setup: $(VENV)/.installed

# Headless Chromium and ChromeDriver for tests/test_widgets_browser.py (Debian packages), installed when missing
# and running as root; elsewhere that test is skipped, with the reason (.ci/run makes it required).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (apt-get)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; } \
		|| echo "could not install chromium: tests/test_widgets_browser.py will be skipped (in CI: fail)"; \
	else echo "chromium/chromedriver missing and not root: tests/test_widgets_browser.py will be skipped"; fi

# Rewrite the lock from a fresh venv. Pins already in the lock are kept and only what pyproject.toml added or
# dropped changes; `make lock UPGRADE=1` resolves everything anew (the newest versions the ranges allow).
# Then run `make test`: the lock should hold only versions that passed it.
lock:
	rm -rf $(LOCK_VENV)
	$(call install,$(LOCK_VENV),$(if $(UPGRADE),,$(if $(wildcard $(LOCK)),-c $(LOCK))))
	mkdir -p $(dir $(LOCK))
	{ echo "# The exact versions that pass \`make test\` (Linux x86_64, CPython 3.11, CPU build of torch)."; \
	  echo "# Written by \`make lock\` (pip freeze --all --exclude-editable of a fresh venv): do not edit by hand."; \
	  echo "# Used as pip constraints (-c) by make setup, environment.yml and the notebooks' Colab install cell."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK_VENV)/lock.txt
	if [ -f $(LOCK) ]; then $(LOCK_VENV)/bin/python tools/lock_diff.py $(LOCK) $(LOCK_VENV)/lock.txt; fi
	mv $(LOCK_VENV)/lock.txt $(LOCK)
	rm -rf $(LOCK_VENV)

# The newest versions the ranges allow, in a separate venv ($(UPGRADE_VENV)), against the unit tests: prints the
# versions that differ from the lock and the tests that broke. torch stays $(TORCH_SPEC) (newer releases on PyPI
# are CUDA builds of several GB). The venv is kept for a closer look; `make lock UPGRADE=1` adopts the versions.
upgrade-check: browser
	rm -rf $(UPGRADE_VENV)
	$(call install,$(UPGRADE_VENV),)
	$(UPGRADE_VENV)/bin/python -m pip freeze --all --exclude-editable > $(UPGRADE_VENV)/freeze.txt
	$(UPGRADE_VENV)/bin/zephyr-tutorial model
	-$(UPGRADE_VENV)/bin/python -m pytest tests -q -p no:cacheprovider --junitxml=$(UPGRADE_VENV)/junit.xml \
		--deselect tests/test_lock.py::test_installed_versions_equal_the_lock 2>&1 | tee $(UPGRADE_VENV)/pytest.log
	$(UPGRADE_VENV)/bin/python tools/lock_diff.py $(LOCK) $(UPGRADE_VENV)/freeze.txt --junit $(UPGRADE_VENV)/junit.xml

model: setup
	$(BIN)/zephyr-tutorial model

run: model
	$(BIN)/zephyr-tutorial run-notebooks --notebooks notebooks --out $(OUT)

unit-tests: model browser lint
	$(BIN)/python -m pytest tests --durations=15

# ruff, configured in pyproject.toml ([tool.ruff]): lint rules, then the formatting (`ruff format` applies it).
lint: setup
	$(BIN)/ruff check zephyr_tutorial tests
	$(BIN)/ruff format --check zephyr_tutorial tests

# --durations lists the slowest cells with their times: where the minutes of the CI budget go.
notebook-tests: model
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks \
		--durations=25

test: unit-tests notebook-tests

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(UPGRADE_VENV) $(OUT)
