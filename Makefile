# The two commands a newcomer runs: `make demo` (install, then run the pipeline on the local cloud)
# and `make test` (install, then run the whole test suite). Both work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps lint bench clean

# Debian packages the tests use for real: Chromium (screenshots of the HTML test report), Groovy
# (parses the Jenkinsfile) and tmux (the terminal `modelops watch` is tested in). Installed only when
# missing; sudo only when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v groovy >/dev/null || missing="$$missing groovy"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,examples]'
	touch $(STAMP)

install: $(STAMP)

# The whole pipeline for the iris example on the local cloud (started by modelops itself): validate,
# build, approve prod as a reviewer (four eyes: not the commit's author), then dev -> test ->
# staging -> test -> prod in two waves (judged canaries once endpoints exist), what serves where, and
# an answer from prod. Then a release that answers about 1 input in 20 wrongly but fast, made in a
# temporary clone (this checkout is not touched), goes through dev and staging and is rolled back by
# prod's judged canary at its first step with the agreement figures: the expected outcome, so the
# demo exits 0. Re-running converges (dev and staging go back to the good release, and the wrong one
# is unblocked and rolled back again).
DEMO_MODEL ?= models/iris
DEMO_APPROVER ?= reviewer@example.com
DEMO_BODY ?= {"instances": [[5.1, 3.5, 1.4, 0.2]]}
demo: $(STAMP)
	$(BIN)/modelops validate
	@release=$$($(BIN)/modelops build $(DEMO_MODEL) --env prod --output json | \
		$(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["release"])') && \
	echo "release $$release" && \
	MODELOPS_USER=$(DEMO_APPROVER) $(BIN)/modelops approve "$$release" --env prod --comment "make demo"
	$(BIN)/modelops deploy $(DEMO_MODEL) --through prod
	$(BIN)/modelops status $$(basename $(DEMO_MODEL))
	$(BIN)/modelops invoke $$(basename $(DEMO_MODEL)) --env prod --region eu-west-1 \
		--body '$(DEMO_BODY)'
	$(BIN)/python scripts/demo_wrong_answers.py
	@echo "the local cloud keeps running (modelops local status); stop it with: $(BIN)/modelops local down"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check modelops tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
