# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test bench lint wasm-check migrate clickhouse-start clickhouse-stop

run: ## ClickHouse + collector + a demo partner, on local defaults
	bash scripts/run.sh

test: ## every test: unit, property, and integration against a real ClickHouse
	bash scripts/test.sh

bench: ## collector ingest throughput and latency vs raw ClickHouse inserts
	bash scripts/bench.sh

lint: ## formatting and clippy, as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

wasm-check: ## the shared rules crate must build for the browser
	cargo build -p event-model --target wasm32-unknown-unknown --no-default-features
	cargo build -p event-model --target wasm32-unknown-unknown

migrate: ## apply schema migrations to CLICKHOUSE_URL and exit
	cargo run --release --bin eventline-collector -- migrate

clickhouse-start:
	bash scripts/clickhouse.sh start

clickhouse-stop:
	bash scripts/clickhouse.sh stop
