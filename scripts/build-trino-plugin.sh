#!/usr/bin/env bash
# Builds the Trino connector (plugins/trino): build/zombi-trino.jar with plain javac against the
# jars of the Trino server the tests run (scripts/trino.sh install), then build/plugin/, the
# directory Trino loads: the Iceberg plugin's jars (hard links) and ours. Maven builds the same
# jar from plugins/trino/pom.xml (`mvn -f plugins/trino/pom.xml package`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
plugin=$root/plugins/trino
home=$("$root/scripts/trino.sh" home)
java_home=${ZOMBI_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

out=$plugin/build
rm -rf "$out/classes" "$out/plugin"
mkdir -p "$out/classes" "$out/plugin"
mapfile -t sources < <(find "$plugin/src/main/java" "$root/plugins/hot-java/src/main/java" -name '*.java' | sort)
# Trino's SPI and its dependencies come from the server; everything else from the Iceberg plugin.
cp=$(find "$home/lib" "$home/plugin/iceberg" -name '*.jar' | sort | paste -sd:)

"$java_home/bin/javac" --release 24 -encoding UTF-8 -Xlint:all,-serial,-processing,-path,-classfile -Werror \
    -cp "$cp" -d "$out/classes" "${sources[@]}"
cp -r "$plugin/src/main/resources/." "$out/classes/"

version=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
printf 'Implementation-Title: zombi-trino\nImplementation-Version: %s\n' "$version" > "$out/manifest.txt"
rm -f "$out/zombi-trino.jar"
"$java_home/bin/jar" --create --file "$out/zombi-trino.jar" --manifest "$out/manifest.txt" -C "$out/classes" .

# The plugin directory: every jar of Trino's Iceberg plugin except the one that registers the
# `iceberg` connector (the server loads that plugin too), and ours.
for jar in "$home"/plugin/iceberg/*.jar; do
    case $(basename "$jar") in trino-iceberg-*-services.jar) continue ;; esac
    ln "$jar" "$out/plugin/" 2>/dev/null || cp "$jar" "$out/plugin/"
done
cp "$out/zombi-trino.jar" "$out/plugin/"
echo "built $out/zombi-trino.jar and $out/plugin/"
