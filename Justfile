# Zombi developer tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Builds live outside the checkout so every clone (and CI) reuses them.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", home_directory() / ".cache/zombi-target")
# The Python venv with PyIceberg, DuckDB, Spark and moto that the tests read tables with.
export ZOMBI_VENV := env_var_or_default("ZOMBI_VENV", home_directory() / ".cache/zombi-venv")
# Jars no PyPI package carries (Iceberg's AWS bundle for Spark on S3), fetched by `just venv`.
export ZOMBI_JARS := env_var_or_default("ZOMBI_JARS", home_directory() / ".cache/zombi-jars")

default:
    @just --list

# Build and start a node (:8090) and an edge (:8080) locally; data under ./data. Ctrl-C stops both.
run:
    cargo build --bins
    scripts/run-local.sh "$CARGO_TARGET_DIR/debug"

# The `zombi` CLI (docs/cli.md), e.g. `just zombi load events.ndjson -t clicks` or
# `just zombi status`.
zombi *args:
    cargo build -q -p zombi-cli
    "$CARGO_TARGET_DIR/debug/zombi" {{args}}

# The whole test suite: unit tests and integration tests that spawn the real binaries
# (built with crash failpoints, which do nothing unless a test arms one).
# One Trino server serves the whole run (scripts/trino.sh run sets ZOMBI_TRINO_URL).
test: venv plugin
    cargo build --bins --features zombi-node/failpoints
    scripts/trino.sh run cargo nextest run --workspace --features zombi-node/failpoints --profile ci

# Create or refresh the engines venv (PyIceberg, DuckDB, Spark, moto) and fetch the jars.
venv:
    scripts/venv.sh "$ZOMBI_VENV"

# Throughput, latency, freshness, CPU and memory on this machine, each next to a baseline
# measured in the same run (release build; ~3 minutes). Writes bench-report.json and
# bench-report.md at the repository root; docs/benchmarks.md explains every figure.
bench: venv plugin
    cargo build --release --bins
    ZOMBI_BIN_DIR="$CARGO_TARGET_DIR/release" "$CARGO_TARGET_DIR/release/zombi-bench"

# A few seconds of every bench load on the test build, so the bench keeps working (CI runs it).
bench-smoke: venv plugin
    cargo build --bins --features zombi-node/failpoints
    out=$(mktemp -d) && ZOMBI_BENCH_QUICK=1 ZOMBI_BENCH_REPORT_DIR="$out" ZOMBI_BIN_DIR="$CARGO_TARGET_DIR/debug" \
        "$CARGO_TARGET_DIR/debug/zombi-bench" && test -s "$out/bench-report.json" && rm -rf "$out"

# Commit time and metadata size as a table ages to 20,000 commits, with and without
# maintenance (release build; ~15 minutes). ZOMBI_AGING_COMMITS sets a shorter run.
bench-aging:
    cargo build --release --bins
    ZOMBI_BIN_DIR="$CARGO_TARGET_DIR/release" "$CARGO_TARGET_DIR/release/zombi-bench-aging"

# The engine plugins, built with Maven from their pom.xml: the Spark/Iceberg plugin
# (plugins/iceberg-java/build/zombi-iceberg.jar) and the Trino connector with its plugin folder
# (plugins/trino/build/plugin/, beside the Trino server scripts/trino.sh downloads once).
plugin:
    scripts/build-plugin.sh
    scripts/build-trino-plugin.sh

# Fuzz the decoders (producer envelopes and bodies, internal batches, table names) for
# `secs` seconds each with cargo-fuzz; crashes are kept in fuzz/regressions/ (see scripts/fuzz.sh).
fuzz secs="60":
    scripts/fuzz.sh {{secs}}

# fmt + clippy with warnings denied.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# The compose deployment (compose/), tested for real with rootful podman: 3 edges behind the
# load balancer, S3 warehouse, engines on the host (see docs/deploy.md). Installs podman.
compose-test: venv
    cargo build --bins --features zombi-node/failpoints
    scripts/compose-test.sh "$CARGO_TARGET_DIR/debug"

# Build every compose image from source, the Zombi binaries inside the image included
# (release build, ~35 minutes on 2 cores).
compose-build: venv
    scripts/compose-build.sh
