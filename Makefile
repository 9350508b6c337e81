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

run: install
	$(PYTHON) -m mmzoo train attention_fusion --epochs 5 --export-dir saved_models

# pytest exits 5 when it collects no test: an empty run proves nothing, so it fails.
test: install
	@$(PYTHON) -m pytest -n $(PYTEST_WORKERS) --durations=15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test-fast:
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) -m "not slow"
