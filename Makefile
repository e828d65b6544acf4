# Every target sets up what it needs: `make test` on a fresh clone builds .venv first.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
PY := $(VENV)/bin/python
export DEEPDEPTH_DATA ?= $(abspath $(if $(wildcard ../shared/data/MNIST/raw),../shared/data,data))

.PHONY: venv test test-fast train study plan smoke-study report bench-cpu docs clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: venv            ## the test suite (CPU, tiny data; real-MNIST tests run when DEEPDEPTH_DATA has it)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: venv       ## the edit loop: the suite without the subprocess/end-to-end and slow tests (a few minutes)
	$(PY) -m pytest -q -m "not e2e and not slow" $(PYTEST_ARGS)

train: venv           ## one trial: make train ARGS="model=resnet k=447"
	$(PY) -m deepdepth.train $(ARGS)

study: venv           ## the whole depth study (7 variants x 2 protocols, 3 seeds per probe), then its report; rerun to resume
	$(PY) -m deepdepth.train -m +experiment=depth_study hydra.sweep.dir=multirun/depth_study $(ARGS)
	$(PY) -m deepdepth.report multirun/depth_study

plan: venv            ## what the study will train and how long it should take, training nothing
	$(PY) -m deepdepth.train -m +experiment=depth_study hydra.sweep.dir=multirun/depth_study hydra.sweeper.dry_run=true $(ARGS)

smoke-study: venv     ## the study on tiny data, on a CPU in a couple of minutes
	$(PY) -m deepdepth.train -m +experiment=depth_study_smoke hydra.sweep.dir=multirun/smoke $(ARGS)
	$(PY) -m deepdepth.report multirun/smoke

bench-cpu: venv       ## the package's epoch against the reference loop, on this machine
	$(PY) benchmarks/bench_cpu.py

docs: venv            ## the documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link or API object fails
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf outputs multirun lightning_logs .pytest_cache site
