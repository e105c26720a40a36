# Shortcuts for developers; the README's commands are scripts/demo and scripts/test.
.PHONY: demo test lint format bench
demo:
	bash scripts/demo
test:
	bash scripts/test
lint:
	.venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench && .venv/bin/mypy
format:
	.venv/bin/ruff check --fix src tests bench && .venv/bin/ruff format src tests bench
bench:
	for b in bench/bench_*.py; do .venv/bin/python $$b --small || exit 1; done
