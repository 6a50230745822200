#!/usr/bin/env bash
# Tests compose/compose.yaml for real (docs/deploy.md#how-it-is-tested): rootful podman and
# podman-compose run the stack with three edges; tests/python/compose_test.py drives it.
#
# Steps, each skipped when already done on this machine:
#   1. install podman, runc and debootstrap (apt), and podman-compose (the engines venv);
#   2. a containers.conf for this run: runc (crun refuses hybrid cgroups) and ulimits that
#      root may raise here;
#   3. the Debian base image the Dockerfiles name, made with debootstrap from the mirror
#      this machine's apt sources name (no image registry is reachable), trusting the same
#      extra CA certificates as this machine;
#   4. the images: the Zombi image from compose/Dockerfile's runtime stage with the
#      host-built binaries in BIN_DIR (building them inside the image takes longer than CI
#      allows; `just compose-build` is the full in-image build), and the load balancer,
#      object store and query images with podman-compose from their own definitions.
# Without apt-get and root, no container runtime can be installed: the test is skipped
# with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:?usage: compose-test.sh BIN_DIR [compose_test.py options]}
shift
venv=${ZOMBI_VENV:?ZOMBI_VENV must name the engines venv}
base_image=docker.io/library/debian:bookworm-slim
zombi_image=localhost/zombi:test-prebuilt

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null || ! as_root true 2>/dev/null; then
        echo "compose test SKIPPED: ${missing[*]} not installed, and installing needs apt-get and root" >&2
        exit 0
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman_compose="$venv/bin/podman-compose"
[ -x "$podman_compose" ] || { echo "podman-compose is missing from $venv (tests/python/requirements.txt)" >&2; exit 1; }

state_dir="${XDG_CACHE_HOME:-$HOME/.cache}/zombi-compose-test"
mkdir -p "$state_dir"
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
cat > "$state_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$state_dir/containers.conf"

# The first Debian mirror of this machine's apt sources (deb822 or one-line format).
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ { print $2; exit }' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
            /etc/apt/sources.list
    fi
}

if ! podman image exists "$base_image"; then
    mirror=$(apt_mirror | grep -v security | head -1)
    [ -n "$mirror" ] || { echo "no Debian mirror found in this machine's apt sources" >&2; exit 1; }
    echo "creating $base_image with debootstrap from $mirror" >&2
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    as_root debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
    # The machine's extra trust anchors (a TLS proxy's CA, for example), picked up when an
    # image installs ca-certificates.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$base_image" >/dev/null
    rm -rf "$root"
    trap - EXIT
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
