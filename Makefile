# Two commands: `make studio` starts the app, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 7860
MODEL ?=

.PHONY: studio test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

studio: venv
	$(PY) app.py --port $(PORT) $(foreach m,$(MODEL),--model $(m))

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
