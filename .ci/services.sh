#!/usr/bin/env bash
# Installs the message brokers the pipeline's sink tests talk to (tests/pipeline/test_sinks_brokers.py):
# Mosquitto (MQTT) and Redis. The tests start their own servers on free ports as subprocesses, so this
# only installs the binaries; the system services are stopped so nothing else holds the default ports.
# Without the binaries those tests skip with "mosquitto not installed: run .ci/services.sh".
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

if have mosquitto && have redis-server; then
    echo "services: mosquitto and redis-server already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "services: need root or sudo to apt-get install mosquitto redis-server; broker tests will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "services: no apt-get on this system; install mosquitto and redis-server by hand" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends mosquitto redis-server
# The packages may start system services on the default ports; the tests use their own, so stop them.
for svc in mosquitto redis-server; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "services: installed $(/usr/sbin/mosquitto -h 2>/dev/null | head -1 || echo mosquitto), $(redis-server --version)"
