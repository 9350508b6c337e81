# Two commands do all set-up on a fresh machine with Python 3.11:
#   make run    install, then the main job
#   make test   install, then the whole test suite (what CI runs)
PYTHON ?= python3
PYTEST_WORKERS ?= 2
# TensorFlow reads this from the process environment only; it hides its C++ start-up logs.
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install run test test-fast

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .

# The unreliable task (one clean modality per example, every modality there): on the default
# redundant data the model reaches its best validation accuracy in epoch 1; here it learns over all five.
run: install
	$(PYTHON) -m mmzoo train attention_fusion --task unreliable --reliability 1 --epochs 5 --export-dir saved_models

# pytest exits 5 when it collects no test: an empty run proves nothing, so it fails.
test: install system-deps
	@$(PYTHON) -m pytest -n $(PYTEST_WORKERS) --durations=15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test-fast:
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) -m "not slow"

# Debian packages for benchmarks/make_real_data.py (espeak-ng, fonts, the word list), whose
# tests generate a small real check set: installs only what is missing. Needs root (apt-get).
SYSTEM_PACKAGES ?= espeak-ng wamerican fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf
.PHONY: system-deps
system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null 2>&1 || missing="espeak-ng"; \
	for package in $(filter-out espeak-ng,$(SYSTEM_PACKAGES)); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "system packages present: $(SYSTEM_PACKAGES)"; \
	fi
