#!/usr/bin/env bash
# Builds the Spark/Iceberg engine plugin, plugins/iceberg-java/build/zombi-iceberg.jar, offline:
# plain javac and jar against the jars of the engines venv (pyspark's and Iceberg's Spark
# runtime 1.10.2). The jar holds only the plugin's classes; Spark and Iceberg provide the rest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${ZOMBI_VENV:-$HOME/.cache/zombi-venv}
plugin=$root/plugins/iceberg-java

shopt -s nullglob
sites=("$venv"/lib/python3*/site-packages)
[[ ${#sites[@]} -gt 0 ]] || { echo "build-plugin: no venv at $venv (run: just venv)" >&2; exit 1; }
site=${sites[0]}
runtime=$site/snowpark_connect_deps_iceberg/jars/iceberg-spark-runtime-3.5_2.12-1.10.2.jar
[[ -f $runtime ]] || { echo "build-plugin: missing $runtime (run: just venv)" >&2; exit 1; }
# Besides Iceberg, the plugin uses Hadoop's Configuration/FileSystem, SLF4J and Jackson, all in Spark.
deps=("$site"/pyspark/jars/hadoop-client-api-*.jar "$site"/pyspark/jars/slf4j-api-*.jar
    "$site"/pyspark/jars/jackson-core-2*.jar "$site"/pyspark/jars/jackson-databind-*.jar)
[[ ${#deps[@]} -eq 4 ]] || { echo "build-plugin: hadoop-client-api, slf4j-api or jackson missing in $site/pyspark/jars" >&2; exit 1; }

out=$plugin/build
rm -rf "$out/classes"
mkdir -p "$out/classes"
# The plugin's own sources and the hot-segment code it shares with the Trino connector.
mapfile -t sources < <(find "$plugin/src/main/java" "$root/plugins/hot-java/src/main/java" -name '*.java' | sort)

javac --release 11 -encoding UTF-8 -Xlint:all,-serial,-processing,-path -Werror \
    -cp "$runtime:$(IFS=:; echo "${deps[*]}")" \
    -d "$out/classes" "${sources[@]}"

version=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
printf 'Implementation-Title: zombi-iceberg\nImplementation-Version: %s\n' "$version" > "$out/manifest.txt"
rm -f "$out/zombi-iceberg.jar"
jar --create --file "$out/zombi-iceberg.jar" --manifest "$out/manifest.txt" -C "$out/classes" .

# Only our classes: Iceberg and Spark come from the runtime jar and Spark itself.
if jar --list --file "$out/zombi-iceberg.jar" | grep -v -e '^META-INF/' -e '^dev/zombi/' -e '^dev/$' | grep -q .; then
    echo "build-plugin: unexpected entries in the jar" >&2
    exit 1
fi
echo "built $out/zombi-iceberg.jar"
