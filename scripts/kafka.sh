#!/usr/bin/env bash
# Apache Kafka for the tests and benchmarks, without Docker.
#   scripts/kafka.sh fetch                       copy the pinned Kafka jars (scripts/kafka/pom.xml)
#                                                into scripts/kafka/libs/ with Maven; a no-op when
#                                                they are there for the pinned version
#   scripts/kafka.sh start [--brokers 1|3] [--dir DIR]
#                                                run a KRaft cluster on free 127.0.0.1 ports in the
#                                                foreground until Ctrl-C (scripts/kafka/cluster.ts)
# fetch never fails the caller (npm pretest): when Java or Maven is missing it says so here and
# writes the reason to scripts/kafka/libs/MISSING, which the Kafka tests then fail with.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="$here/kafka/libs"
pom="$here/kafka/pom.xml"

missing() {
  mkdir -p "$libs"
  echo "$1" > "$libs/MISSING"
  rm -f "$libs/.stamp"
  echo "kafka.sh: $1" >&2
  exit 0
}

fetch() {
  local want
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -f "$libs/.stamp" ] && [ "$(cat "$libs/.stamp")" = "$want" ]; then exit 0; fi
  command -v java >/dev/null 2>&1 || missing "Java is missing (no \`java\` on PATH): install a JDK or JRE 17+ (Debian: apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || missing "Maven is missing (no \`mvn\` on PATH), needed to fetch the Kafka jars: apt-get install maven"
  rm -rf "$libs"
  mkdir -p "$libs"
  echo "kafka.sh: fetching Apache Kafka jars with Maven into $libs" >&2
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime > "$libs/mvn.log" 2>&1; then
    tail -20 "$libs/mvn.log" >&2
    missing "mvn dependency:copy-dependencies failed for $pom (see $libs/mvn.log): is Maven Central reachable?"
  fi
  ls "$libs"/kafka_2.13-*.jar >/dev/null 2>&1 || missing "Maven ran but no kafka_2.13 jar is in $libs"
  rm -f "$libs/MISSING"
  echo "$want" > "$libs/.stamp"
}

case "${1:-}" in
  fetch) fetch ;;
  start) shift; exec node --import tsx "$here/kafka/cluster.ts" "$@" ;;
  *) echo "usage: scripts/kafka.sh fetch | start [--brokers 1|3] [--dir DIR]" >&2; exit 2 ;;
esac
