#!/usr/bin/env bash
# Tests compose/compose.yaml for real (docs/deploy.md#how-it-is-tested): rootful podman and
# podman-compose run the stack with three edges; tests/python/compose_test.py drives it.
#
# scripts/podman-setup.sh installs podman and creates the base image (each only when
# missing). Then the images: the Zombi image is compose/Dockerfile's runtime stage with the
# host-built binaries in BIN_DIR (building them inside the image takes longer than CI
# allows; `just compose-build` is the full in-image build), and the load balancer, object
# store and query images are built by podman-compose from their own definitions.
# Without apt-get and root, no container runtime can be installed: the test is skipped
# with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:?usage: compose-test.sh BIN_DIR [compose_test.py options]}
shift
venv=${ZOMBI_VENV:?ZOMBI_VENV must name the engines venv}
zombi_image=localhost/zombi:test-prebuilt

source scripts/podman-setup.sh
if [ -n "${ZOMBI_NO_RUNTIME:-}" ]; then
    echo "compose test SKIPPED: no container runtime: $ZOMBI_NO_RUNTIME" >&2
    exit 0
fi

echo "building the images" >&2
podman build --quiet --target runtime -t localhost/zombi-runtime:test -f compose/Dockerfile . >/dev/null
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin_dir/zombi-node" "$bin_dir/zombi-edge" "$ctx/"
strip "$ctx/zombi-node" "$ctx/zombi-edge"
cat > "$ctx/Containerfile" <<'CF'
FROM localhost/zombi-runtime:test
COPY zombi-node zombi-edge /usr/local/bin/
CMD ["zombi-node"]
CF
podman build --quiet -t "$zombi_image" "$ctx" >/dev/null
"$podman_compose" -f compose/compose.yaml --profile query build s3 lb query >/dev/null

"$venv/bin/python" tests/python/compose_test.py --compose-dir compose \
    --podman-compose "$podman_compose" --image "$zombi_image" "$@"
podman image prune -f >/dev/null
