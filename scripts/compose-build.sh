#!/usr/bin/env bash
# `just compose-build`: builds every image of compose/compose.yaml from source, the Zombi
# binaries included (a release build inside the image: ~35 minutes on 2 cores). With a
# Docker daemon it is `docker compose build`; otherwise rootful podman and podman-compose
# (scripts/podman-setup.sh). Where no registry serves the Rust image that compose/Dockerfile
# names, it is made locally from the Debian base image and this machine's Rust toolchain of
# the same version.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ZOMBI_VENV:?ZOMBI_VENV must name the engines venv}
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    exec docker compose -f compose/compose.yaml --profile query build "$@"
fi
source scripts/podman-setup.sh
if [ -n "${ZOMBI_NO_RUNTIME:-}" ]; then
    echo "no container runtime: $ZOMBI_NO_RUNTIME" >&2
    exit 1
fi

rust_image=$(awk '$1 == "FROM" && $2 ~ /rust:/ { print $2; exit }' compose/Dockerfile)
if ! podman image exists "$rust_image" && ! podman pull -q "$rust_image" >/dev/null 2>&1; then
    want=${rust_image##*:}
    want=${want%%-*}
    sysroot=$(rustc --print sysroot)
    have=$(rustc --version | awk '{ print $2 }')
    case "$have" in
        "$want" | "$want".*) ;;
        *) echo "$rust_image cannot be pulled, and this machine's rustc is $have, not $want" >&2; exit 1 ;;
    esac
    echo "creating $rust_image from $base_image and the toolchain in $sysroot" >&2
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    mkdir "$ctx/rust"
    cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/rust/"
    [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$ctx/rust/"
    cat > "$ctx/Containerfile" <<CF
FROM $base_image
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:\$PATH
CF
    podman build --quiet -t "$rust_image" "$ctx" >/dev/null
    rm -rf "$ctx"
    trap - EXIT
fi
started=$(date +%s)
"$podman_compose" -f compose/compose.yaml --profile query build "$@"
echo "images built in $(( $(date +%s) - started )) s" >&2
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'localhost/zombi(-s3|-lb|-query)?:latest' >&2
