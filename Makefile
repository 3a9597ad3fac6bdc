.PHONY: install quantize-env serve test lint
install:
	bash scripts/install.sh
quantize-env:
	bash scripts/quantize-env.sh
serve:
	bash scripts/serve.sh
test:
	bash scripts/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
