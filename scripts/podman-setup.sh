#!/usr/bin/env bash
# Sourced by compose-test.sh and compose-build.sh: makes rootful podman usable on this
# machine, or sets ZOMBI_NO_RUNTIME when no container runtime can be installed.
#   1. podman, runc and debootstrap from apt, when missing;
#   2. a containers.conf for these runs (CONTAINERS_CONF): runc, since crun refuses hybrid
#      cgroups, and ulimits that root may raise here;
#   3. the Debian base image the Dockerfiles name, when no registry provides it: made with
#      debootstrap from the mirror this machine's apt sources name, trusting the same
#      extra CA certificates as this machine (a TLS proxy's CA, for example).
# Needs: $venv (the engines venv, which holds podman-compose).
base_image=docker.io/library/debian:bookworm-slim
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null || ! as_root true 2>/dev/null; then
        ZOMBI_NO_RUNTIME="${missing[*]} not installed, and installing needs apt-get and root"
        return 0
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman_compose="$venv/bin/podman-compose"
[ -x "$podman_compose" ] || { echo "podman-compose is missing from $venv (tests/python/requirements.txt)" >&2; return 1; }

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
    [ -n "$mirror" ] || { echo "no Debian mirror found in this machine's apt sources" >&2; return 1; }
    echo "creating $base_image with debootstrap from $mirror" >&2
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    as_root debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
    # Picked up when an image installs ca-certificates.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    # Like the published slim image: no documentation, manual pages or translations, and
    # no apt package caches left in image layers.
    cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
    printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' > "$root/etc/apt/apt.conf.d/slim"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
        "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$base_image" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi

