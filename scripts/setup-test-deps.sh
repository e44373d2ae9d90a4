#!/usr/bin/env bash
# Installs the Debian packages the tests drive as independent peers: kcat (librdkafka) for the
# broker tests, chromium for the dashboard test, Java and Maven for Apache Kafka (whose jars
# scripts/kafka.sh fetch then copies from Maven Central, once; cached in ~/.m2). Only missing packages are installed; on a
# machine without root or apt it says what is missing and leaves the tests to report it.
set -uo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ "${FERRY_BENCH_DEPS:-0}" = 1 ]; then
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
fi
fetch_kafka() { bash "$(dirname "$0")/kafka.sh" fetch; }
[ ${#need[@]} -eq 0 ] && { fetch_kafka; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-deps: missing ${need[*]} and cannot install them (need root and apt-get)" >&2
  fetch_kafka
  exit 0
fi
echo "setup-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || { echo "setup-test-deps: apt-get install ${need[*]} failed" >&2; exit 1; }
fetch_kafka
