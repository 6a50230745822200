#!/usr/bin/env bash
# Builds the Spark/Iceberg engine plugin, plugins/iceberg-java/build/zombi-iceberg.jar, with Maven
# from plugins/iceberg-java/pom.xml (its own classes and the shared plugins/hot-java code; Spark
# and the Iceberg runtime jar provide the rest). Offline once ~/.m2 holds the dependencies.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pom=$root/plugins/iceberg-java/pom.xml
mvn_args=(-B -q -Dstyle.color=never -f "$pom" package)
# Offline first (quiet); when that fails (a dependency not cached yet, or a compile error), a clean
# build online shows why.
mvn -o "${mvn_args[@]}" >/dev/null 2>&1 || mvn clean "${mvn_args[@]}"

jar=$root/plugins/iceberg-java/build/zombi-iceberg.jar
# Only our classes: Iceberg and Spark come from the runtime jar and Spark itself.
if jar --list --file "$jar" | grep -v -e '^META-INF/' -e '^dev/zombi/' -e '^dev/$' | grep -q .; then
    echo "build-plugin: unexpected entries in $jar" >&2
    exit 1
fi
echo "built $jar"
