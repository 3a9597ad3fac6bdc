.PHONY: install serve test lint
install:
	bash scripts/install.sh
serve:
	bash scripts/serve.sh
test:
	bash scripts/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
