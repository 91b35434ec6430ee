# The two commands a newcomer needs: `make run` and `make test`.
# The tracker's pinned tools (the dated nightly, wasm-bindgen, binaryen, twiggy); the scripts read
# the same file, so `make run`, `make tracker`, `make size` and CI build one artifact.
include scripts/wasm-tools.env
.PHONY: run test bench bench-audience bench-campaigns lint wasm-check migrate clickhouse-start clickhouse-stop tracker size test-e2e

run: ## ClickHouse + collector + a demo partner, on local defaults
	bash scripts/run.sh

test: ## every test: Rust unit/property/integration, tracker wasm suites, size budget, npm package, browser e2e
	bash scripts/test.sh

tracker: ## build the WASM tracker (on $(TRACKER_NIGHTLY)) and the npm package into npm/dist/
	bash scripts/install-wasm-tools.sh
	bash scripts/build-tracker.sh
	cd npm && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build

size: ## build the tracker, its size (raw/gzip/brotli) against the budget, where the bytes go, beside Snowplow, Segment and PostHog
	bash scripts/size-report.sh

test-e2e: ## only the end-to-end tests in headless Chromium
	bash tests/e2e/run.sh

bench: ## collector ingest throughput and latency vs raw ClickHouse inserts (ARGS="--prefill 3000000": a table of that size first)
	bash scripts/bench.sh $(ARGS)

bench-campaigns: ## campaign latency: event acknowledged -> message queued at a steady 200 events/s (ARGS="--rate 200 --secs 30")
	bash scripts/bench-campaigns.sh $(ARGS)

bench-audience: ## segment counts, member pages and customer history over 10M generated events (ARGS="--events 100000000")
	bash scripts/bench-audience.sh $(ARGS)

lint: ## formatting and clippy (native and wasm32), as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p eventline-tracker --target wasm32-unknown-unknown --all-targets -- -D warnings

wasm-check: ## the shared rules crate must build for the browser
	cargo build -p event-model --target wasm32-unknown-unknown --no-default-features
	cargo build -p event-model --target wasm32-unknown-unknown

migrate: ## apply schema migrations to CLICKHOUSE_URL and exit
	cargo run --release --bin eventline-collector -- migrate

clickhouse-start:
	bash scripts/clickhouse.sh start

clickhouse-stop:
	bash scripts/clickhouse.sh stop
