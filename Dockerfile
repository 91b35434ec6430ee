# The collector image: build in the Rust image, run the static-enough binary on slim Debian.
# No container engine can build it on the development machines (tests/container/check.py replays
# its build there instead); build and run it where one can:
#   docker build -t eventline-collector .
#   docker run -p 8080:8080 -e CLICKHOUSE_URL=http://clickhouse:8123 \
#     -e EVENTLINE_ADMIN_TOKEN="$(openssl rand -hex 32)" eventline-collector
# It listens on 0.0.0.0, so it refuses to start without an admin token of at least 32 bytes.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Manifests first, so dependency builds are cached across source edits. Cargo loads every
# workspace member's manifest even for `-p eventline-collector`, so all of them are copied
# (tests/container/check.py fails when a member is missing here). The tracker stays a stub.
COPY Cargo.toml Cargo.lock ./
COPY event-model/Cargo.toml event-model/Cargo.toml
COPY audience/Cargo.toml audience/Cargo.toml
COPY campaigns/Cargo.toml campaigns/Cargo.toml
COPY collector/Cargo.toml collector/Cargo.toml
COPY tracker-wasm/Cargo.toml tracker-wasm/Cargo.toml
# The stub manifest loses its [[bench]] and [[test]] tables (each up to the next blank line):
# their files are not here yet, and only the binary is built.
RUN mkdir -p event-model/src audience/src campaigns/src collector/src tracker-wasm/src \
    && echo 'fn main() {}' > collector/src/main.rs \
    && touch collector/src/lib.rs event-model/src/lib.rs audience/src/lib.rs campaigns/src/lib.rs tracker-wasm/src/lib.rs \
    && sed -i '/^\[\[\(bench\|test\)\]\]$/,/^$/d' collector/Cargo.toml \
    && cargo build --release --locked -p eventline-collector \
    && rm -rf event-model/src audience/src campaigns/src collector/src
COPY event-model event-model
COPY audience audience
COPY campaigns campaigns
COPY collector collector
RUN touch event-model/src/lib.rs audience/src/lib.rs collector/src/lib.rs collector/src/main.rs \
    && cargo build --release --locked -p eventline-collector --bin eventline-collector

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 eventline
COPY --from=build /src/target/release/eventline-collector /usr/local/bin/eventline-collector
USER eventline
ENV EVENTLINE_LISTEN=0.0.0.0:8080 EVENTLINE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["eventline-collector"]
CMD ["serve"]
