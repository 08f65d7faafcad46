# Everything installs into .venv/ from pyproject.toml pinned by requirements.lock.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp
# TFX's components run in their own .venv-tfx/ on Python 3.10 (TFX 1.16 needs < 3.11, and its
# protobuf 3 cannot share an environment with kfp's protobuf 4), pinned by requirements-tfx.lock.
VENV_TFX := .venv-tfx
TFX_STAMP := $(VENV_TFX)/.installed-stamp
PYTHON310 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.10.*/bin/python3.10) \
	$(shell command -v python3.10 2>/dev/null))

.PHONY: install system tools demo test test-fast test-tfx tfx lint lint-imports lint-manifests \
	compile clean image kind-load kind-up kind-down kind-e2e typecheck

# Debian packages the tests run: Mosquitto (the MQTT broker devices report to; the fleet tests
# start their own instances on 127.0.0.1) and Chromium (renders the fleet report, headless).
SYSTEM_PACKAGES := mosquitto chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The development install is setuptools' strict editable mode: it links every file the wheel
# would carry into build/__editable__.*/edgeship/ and puts that folder on the venv's path, so the
# files Python imports are the files an editor, Pyright (basedpyright) or mypy reads; the default
# mode's import hook maps edgeship.components to components/ in a way no static tool follows (and
# `make typecheck` needs them to resolve every edgeship.* import). Measured against a tree of
# directory links (where a new file appears by itself): strict mode needs no script of ours and
# links exactly the wheel's packages and package data, and relinking takes ~4 s; its cost is that
# a new module needs `make install`. So the stamp depends on the list of the packages' files
# (DEV_FILES, rewritten only when a file is added or removed): any make target relinks after
# one is added, and a bare pytest run after adding a module says ModuleNotFoundError until then.
# --compile-bytecode, as pip does by default: every pipeline step is a new process, and without
# .pyc files each would compile TensorFlow's, TFDV's and TFMA's source again (tens of seconds
# a step where PYTHONDONTWRITEBYTECODE is set, as on CI machines).
PACKAGE_FOLDERS := edgeship components pipelines edge_pusher device tfx_components
DEV_FILES := build/dev-install-files.txt
$(shell mkdir -p build && find $(PACKAGE_FOLDERS) -name __pycache__ -prune -o -type f \
	\( -name '*.py' -o -name '*.yaml' -o -name '*.csv' -o -name '*.md' -o -name py.typed \) -print 2>/dev/null \
	| LC_ALL=C sort > $(DEV_FILES).new; cmp -s $(DEV_FILES).new $(DEV_FILES) \
	|| mv $(DEV_FILES).new $(DEV_FILES); rm -f $(DEV_FILES).new)
STRICT := --config-settings editable_mode=strict --reinstall-package edgeship
FULL_INSTALL = $(UV) pip install --quiet --compile-bytecode --python $(PY) -c requirements.lock \
	-e '.[pipelines,fleet,dev]' $(STRICT)
# Only a file added or removed: relink edgeship alone (the pinned stack is unchanged).
RELINK = $(UV) pip install --quiet --no-deps --python $(PY) -e . $(STRICT)
$(STAMP): pyproject.toml requirements.lock $(DEV_FILES)
	@echo "installing edgeship and its pinned stack into $(VENV)/ (a few minutes the first time)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(if $(filter-out $(DEV_FILES),$?),$(FULL_INSTALL),$(RELINK))
	touch $(STAMP)

install: $(STAMP)

system:
	@missing="$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The same strict editable install as .venv/ (both link the one tree under build/).
TFX_FULL_INSTALL = $(VENV_TFX)/bin/uv pip install --quiet --compile-bytecode \
	--python $(VENV_TFX)/bin/python -c requirements-tfx.lock -e '.[tfx,dev]' $(STRICT)
TFX_RELINK = $(VENV_TFX)/bin/uv pip install --quiet --no-deps --python $(VENV_TFX)/bin/python \
	-e . $(STRICT)
$(TFX_STAMP): pyproject.toml requirements-tfx.lock $(DEV_FILES)
	@test -n "$(PYTHON310)" || { echo "make tfx needs Python 3.10: make tfx PYTHON310=/path/to/python3.10"; exit 1; }
	@echo "installing TFX 1.16 and its pinned stack into $(VENV_TFX)/ (a few minutes the first time)"
	test -x $(VENV_TFX)/bin/python || $(PYTHON310) -m venv $(VENV_TFX)
	$(VENV_TFX)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(if $(filter-out $(DEV_FILES),$?),$(TFX_FULL_INSTALL),$(TFX_RELINK))
	touch $(TFX_STAMP)

tfx: $(TFX_STAMP)

# The TFX tests, in .venv-tfx (the main venv has no TFX, and leaves tests/tfx/ out).
test-tfx: $(TFX_STAMP)
	$(VENV_TFX)/bin/python -m pytest -n 2 --dist loadfile tests/tfx

# The flagship pipeline on its bundled data, then a simulated device taking the signed model.
DEMO := .edgeship/demo
demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/edgeship run sensor --workdir $(DEMO)
	$(VENV)/bin/edgeship device poll --repo file://$(CURDIR)/$(DEMO)/bucket \
		--trusted-root $(DEMO)/keys/root.json --state-dir $(DEMO)/device \
		--device-id demo-device --once
	$(VENV)/bin/edgeship device status --state-dir $(DEMO)/device

# The offline checkers for Dockerfile, manifests and scripts live apart in .venv-tools/.
tools: $(STAMP)
	manifests/scripts/tools-venv.sh

test: $(STAMP) system tools lint-imports typecheck test-tfx
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

lint: $(STAMP) lint-imports
	$(VENV)/bin/ruff check .

# Types: basedpyright (pyproject.toml's [tool.basedpyright]: basic mode, Python 3.10) on every
# source folder, reading edgeship.* from the strict editable install. It bundles Node.js in its
# wheel and runs offline. tfx_components/ is checked against .venv-tfx, where TFX is.
TYPECHECK_FILES = $(filter-out tfx_components%,$(shell find \
	$(PACKAGE_FOLDERS) benchmarks -name __pycache__ -prune -o -name '*.py' -print | LC_ALL=C sort))
# -p names the configuration: otherwise a pyrightconfig.json in any parent folder wins over it.
typecheck: $(STAMP) $(TFX_STAMP)
	$(VENV)/bin/basedpyright -p pyproject.toml --pythonpath $(PY) $(TYPECHECK_FILES)
	$(VENV)/bin/basedpyright -p pyproject.toml --pythonpath $(VENV_TFX)/bin/python tfx_components

# Package boundaries (pyproject.toml's [tool.importlinter]) on the layout an install creates:
# the repository's folders become edgeship.* only when installed, and import-linter reads a
# package from its own folder. It runs inside that tree (it puts its working directory first).
# setuptools stages files in build/lib and never deletes from it: cleared, so removed code
# cannot linger in the checked tree.
LINT_TREE := build/lint-imports
lint-imports: $(STAMP)
	rm -rf $(LINT_TREE) build/lib
	$(UV) pip install --quiet --no-deps --no-build-isolation --python $(PY) --target $(LINT_TREE) .
	cd $(LINT_TREE) && $(CURDIR)/$(VENV)/bin/lint-imports --no-cache $(CURDIR)/pyproject.toml

# hadolint, shellcheck, kubernetes-validate and checkov, as the tests run them (one definition).
lint-manifests: $(STAMP) tools
	$(PY) -m pytest -q tests/infra/test_dockerfile.py tests/infra/test_manifests.py \
		tests/infra/test_scripts.py

# Cluster targets need a Docker engine and kind (see docs/kind.md); they cannot run in CI here.
IMAGE = $(shell $(PY) -c 'from edgeship.image import IMAGE; print(IMAGE)')
VERSION = $(shell $(PY) -c 'from edgeship import __version__; print(__version__)')

image: $(STAMP)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

kind-load: $(STAMP)
	manifests/scripts/kind-load.sh

kind-up: $(STAMP)
	manifests/scripts/kind-up.sh

kind-down:
	manifests/scripts/kind-down.sh

kind-e2e: $(STAMP)
	manifests/scripts/kind-e2e.sh

compile: $(STAMP)
	mkdir -p build
	for p in sensor vision tabular; do $(VENV)/bin/edgeship compile $$p -o build/$$p.yaml; done

clean:
	rm -rf build .edgeship .pytest_cache .hypothesis
