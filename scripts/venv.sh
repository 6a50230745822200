#!/usr/bin/env bash
# Creates (or refreshes) the Python venv with the real engines the tests read tables with.
# Reinstalls only when tests/python/requirements.txt changed. Then fetches the jars that no
# PyPI package carries into $ZOMBI_JARS (default ~/.cache/zombi-jars), each pinned by its
# sha256 and downloaded only when missing.
set -euo pipefail
venv=${1:?usage: venv.sh VENV_DIR}
req="$(dirname "$0")/../tests/python/requirements.txt"
stamp="$venv/.zombi-requirements"
if ! { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; }; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi

jars=${ZOMBI_JARS:-$HOME/.cache/zombi-jars}
maven=https://repo1.maven.org/maven2

# fetch_jar GROUP_PATH ARTIFACT VERSION SHA256: $jars/ARTIFACT-VERSION.jar from Maven Central.
fetch_jar() {
    local group=$1 artifact=$2 version=$3 sha256=$4
    local name="$artifact-$version.jar"
    [ -f "$jars/$name" ] && return 0
    mkdir -p "$jars"
    local tmp
    tmp=$(mktemp "$jars/.$name.XXXXXX")
    if ! curl -fsSL --retry 3 -o "$tmp" "$maven/$group/$artifact/$version/$name"; then
        rm -f "$tmp"
        echo "venv.sh: cannot download $name from $maven" >&2
        return 1
    fi
    if ! echo "$sha256  $tmp" | sha256sum --check --quiet --status; then
        echo "venv.sh: $name does not match its pinned sha256 $sha256 (got $(sha256sum "$tmp" | cut -d' ' -f1))" >&2
        rm -f "$tmp"
        return 1
    fi
    chmod 644 "$tmp"
    mv "$tmp" "$jars/$name"
}

# The AWS SDK that Iceberg's S3FileIO (inside the Spark runtime jar) needs for Spark to read
# an S3 warehouse (tests/python/zombi_spark.py). The runtime jar is Iceberg 1.10.2, but Maven
# Central as reached here serves iceberg-aws-bundle up to 1.10.1 only (1.10.2 answers 404).
# The bundle holds no Iceberg code, only AWS SDK 2.33.0 and the HTTP client S3FileIO loads,
# and 1.10.2 is a bug-fix release; Spark read a SeaweedFS warehouse with this pair.
fetch_jar org/apache/iceberg iceberg-aws-bundle 1.10.1 \
    86bf20892ea5b4c17688f19b075399885f6aa5303f6b2dc9f491e76ceef9633b
