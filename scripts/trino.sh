#!/usr/bin/env bash
# A Trino server for the tests and the bench: one coordinator that is also its worker, bounded
# memory, catalogs created at run time (`CREATE CATALOG … USING iceberg|zombi`).
#
#   scripts/trino.sh install          download Trino (core server + Iceberg plugin) once
#   scripts/trino.sh home             install, then print the server's folder
#   scripts/trino.sh start DIR        start a server whose state lives in DIR; prints its URL
#   scripts/trino.sh stop DIR         stop it
#   scripts/trino.sh run CMD…         start one, run CMD with ZOMBI_TRINO_URL set, stop it
#
# Downloads from Maven Central are cached under ~/.cache/zombi-trino (ZOMBI_TRINO_CACHE).
# Trino 476 needs Java 24 or newer: ZOMBI_TRINO_JAVA_HOME, else the Temurin 25 of this machine.
# The Zombi connector (plugins/trino, `just plugin`) is installed when its build exists.
set -euo pipefail

version=476
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ZOMBI_TRINO_CACHE:-$HOME/.cache/zombi-trino}
home=$cache/trino-server-core-$version
central=${ZOMBI_MAVEN_CENTRAL:-https://repo1.maven.org/maven2}
java_home=${ZOMBI_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
zombi_plugin=$root/plugins/trino/build/plugin

die() { echo "trino.sh: $*" >&2; exit 1; }

fetch() { # url file
    [[ -s $2 ]] && return 0
    echo "trino.sh: downloading $1" >&2
    curl -fsSL --retry 3 -o "$2.part" "$1" && mv "$2.part" "$2"
}

install() {
    [[ -x $java_home/bin/java ]] || die "Trino $version needs Java 24+; none at $java_home (set ZOMBI_TRINO_JAVA_HOME)"
    [[ -f $home/.complete ]] && return 0
    mkdir -p "$cache"
    fetch "$central/io/trino/trino-server-core/$version/trino-server-core-$version.tar.gz" \
        "$cache/trino-server-core-$version.tar.gz"
    fetch "$central/io/trino/trino-iceberg/$version/trino-iceberg-$version.zip" \
        "$cache/trino-iceberg-$version.zip"
    rm -rf "$home" "$cache/unpack"
    mkdir -p "$cache/unpack"
    tar -xzf "$cache/trino-server-core-$version.tar.gz" -C "$cache/unpack"
    unzip -q "$cache/trino-iceberg-$version.zip" -d "$cache/unpack"
    mv "$cache/unpack/trino-iceberg-$version" "$cache/unpack/trino-server-core-$version/plugin/iceberg"
    mv "$cache/unpack/trino-server-core-$version" "$home"
    rm -rf "$cache/unpack"
    touch "$home/.complete"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1
    install
    mkdir -p "$dir/etc" "$dir/data" "$dir/plugin"
    dir=$(cd "$dir" && pwd)
    local port
    port=$(free_port)
    # Plugins: Trino's own (by link) and Zombi's connector when it is built.
    for p in "$home"/plugin/*/; do ln -sfn "$p" "$dir/plugin/$(basename "$p")"; done
    if [[ -d $zombi_plugin ]]; then ln -sfn "$zombi_plugin" "$dir/plugin/zombi"; fi
    cat > "$dir/etc/node.properties" <<EOF
node.environment=zombi
node.id=zombi-$port
node.data-dir=$dir/data
node.internal-address=127.0.0.1
EOF
    cat > "$dir/etc/jvm.config" <<EOF
-server
-Xmx${ZOMBI_TRINO_HEAP:-2G}
-XX:+UseG1GC
-XX:G1HeapRegionSize=32M
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:+EnableDynamicAgentLoading
-Djdk.attach.allowAttachSelf=true
-Dfile.encoding=UTF-8
EOF
    cat > "$dir/etc/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$port
discovery.uri=http://127.0.0.1:$port
plugin.dir=$dir/plugin
catalog.management=dynamic
catalog.store=memory
query.max-memory=1GB
query.max-memory-per-node=1GB
task.concurrency=2
EOF
    cat > "$dir/etc/log.properties" <<EOF
io.trino=WARN
io.trino.server.TrinoServer=INFO
dev.zombi=INFO
EOF
    JAVA_HOME=$java_home PATH="$java_home/bin:$PATH" \
        "$home/bin/launcher" start --etc-dir="$dir/etc" --data-dir="$dir/data" >"$dir/launcher.log" 2>&1 \
        || die "launcher failed: $(cat "$dir/launcher.log")"
    local url="http://127.0.0.1:$port"
    echo "$url" > "$dir/url"
    # Ready when the server says it is no longer starting (about 20-60 s on 2 cores).
    local deadline=$((SECONDS + ${ZOMBI_TRINO_START_TIMEOUT:-240}))
    until curl -fsS "$url/v1/info" 2>/dev/null | grep -q '"starting":false'; do
        if ((SECONDS > deadline)) || ! JAVA_HOME=$java_home "$home/bin/launcher" status --etc-dir="$dir/etc" --data-dir="$dir/data" >/dev/null 2>&1; then
            tail -n 40 "$dir/data/var/log/server.log" >&2 || true
            stop "$dir"
            die "the server at $url did not start"
        fi
        sleep 0.5
    done
    echo "$url"
}

stop() {
    local dir=$1
    [[ -d $dir/etc ]] || return 0
    JAVA_HOME=$java_home "$home/bin/launcher" kill --etc-dir="$dir/etc" --data-dir="$dir/data" >/dev/null 2>&1 || true
}

case ${1:-} in
    install) install ;;
    home) install; echo "$home" ;;
    start) [[ $# -eq 2 ]] || die "usage: trino.sh start DIR"; start "$2" ;;
    stop) [[ $# -eq 2 ]] || die "usage: trino.sh stop DIR"; stop "$2" ;;
    run)
        shift
        [[ $# -gt 0 ]] || die "usage: trino.sh run CMD…"
        state=$(mktemp -d "${TMPDIR:-/tmp}/zombi-trino.XXXXXX")
        trap 'stop "$state"; rm -rf "$state"' EXIT
        ZOMBI_TRINO_URL=$(start "$state")
        export ZOMBI_TRINO_URL
        "$@"
        ;;
    *) die "usage: trino.sh install | home | start DIR | stop DIR | run CMD…" ;;
esac
