#!/usr/bin/env bash
# Builds the Trino connector: plugins/trino/build/zombi-trino.jar with Maven from
# plugins/trino/pom.xml (Java 24+), then plugins/trino/build/plugin/, the folder Trino loads:
# the jars of the Iceberg plugin of the Trino server the tests run (scripts/trino.sh install),
# as hard links, and ours. Offline once ~/.m2 and the Trino download are cached.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
plugin=$root/plugins/trino
home=$("$root/scripts/trino.sh" home)
export JAVA_HOME=${ZOMBI_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

mvn_args=(-B -q -Dstyle.color=never -f "$plugin/pom.xml" package)
# Offline first (quiet); when that fails (a dependency not cached yet, or a compile error), a clean
# build online shows why.
mvn -o "${mvn_args[@]}" >/dev/null 2>&1 || mvn clean "${mvn_args[@]}"

out=$plugin/build
rm -rf "$out/plugin"
mkdir -p "$out/plugin"
# Every jar of Trino's Iceberg plugin except the one that registers the `iceberg` connector (the
# server loads that plugin too), and ours.
for jar in "$home"/plugin/iceberg/*.jar; do
    case $(basename "$jar") in trino-iceberg-*-services.jar) continue ;; esac
    ln "$jar" "$out/plugin/" 2>/dev/null || cp "$jar" "$out/plugin/"
done
cp "$out/zombi-trino.jar" "$out/plugin/"
echo "built $out/zombi-trino.jar and $out/plugin/"
