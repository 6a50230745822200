#!/usr/bin/env bash
# Installs what building and testing Zombi needs on a fresh Debian machine with the Rust
# toolchain: libclang (for the rocksdb crate's bindings), a JDK (Spark, the Iceberg plugin),
# Chromium (the status page's test), just and cargo-nextest.
# Safe to run again: it only installs what is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
# libfaketime: tests run the node with its wall clock stepped.
dpkg -s faketime >/dev/null 2>&1 || missing+=(faketime)
command -v curl >/dev/null || missing+=(curl)
# unzip: the Trino Iceberg plugin archive (scripts/trino.sh).
command -v unzip >/dev/null || missing+=(unzip)
# Java: Spark in the engine tests, and javac for the Iceberg plugin (`just plugin`).
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
# Maven: both engine plugins build from their pom.xml (`just plugin`).
command -v mvn >/dev/null || missing+=(maven)
# Headless Chromium: the test of the node's status page (`/ui`) renders it.
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v just >/dev/null; then
    # The PyPI wheel ships the prebuilt binary and installs in seconds.
    python3 -m pip install --quiet rust-just || cargo install just --locked
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
