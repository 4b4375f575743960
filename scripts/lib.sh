# Shared set-up for scripts/demo, scripts/test and scripts/bench. Sourced, never run.
# Installs and starts what shopstream needs on a Debian-like machine without Docker:
# the machine's own PostgreSQL and, for tests, the tansu Kafka-protocol broker.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A persistent target dir outside the clone keeps rebuilds incremental across fresh clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shopstream/target}"
PG_VERSION="${PG_VERSION:-15}"
PG_PORT="${PG_PORT:-5432}"
SHOPSTREAM_DB_USER="${SHOPSTREAM_DB_USER:-shopstream}"
SHOPSTREAM_DB_PASSWORD="${SHOPSTREAM_DB_PASSWORD:-shopstream}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Makes DATABASE_URL point at a running server. A DATABASE_URL given by the caller is used as is.
ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        log "Using DATABASE_URL from the environment."
        return
    fi
    if ! command -v pg_ctlcluster >/dev/null || [ ! -d "/usr/lib/postgresql/$PG_VERSION" ]; then
        log "Installing PostgreSQL $PG_VERSION with apt-get."
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" postgresql-client >/dev/null \
            || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
        PG_VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    fi
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$PG_VERSION main"; then
        as_root pg_createcluster "$PG_VERSION" main >/dev/null
    fi
    if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main" {print $4}' | grep -q online; then
        log "Starting PostgreSQL $PG_VERSION cluster 'main'."
        as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
    fi
    PG_PORT="$(cluster_port main)"
    create_role_and_database "$PG_PORT"
    export DATABASE_URL="postgres://$SHOPSTREAM_DB_USER:$SHOPSTREAM_DB_PASSWORD@127.0.0.1:$PG_PORT/$SHOPSTREAM_DB_USER"
}

cluster_port() { pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$1" '$1==v && $2==c {print $3}'; }

# Waits for the server on port $1, then creates the shopstream role and database if missing.
create_role_and_database() {
    for _ in $(seq 1 30); do
        as_root runuser -u postgres -- pg_isready -q -p "$1" && break
        sleep 1
    done
    as_root runuser -u postgres -- psql -q -p "$1" -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SHOPSTREAM_DB_USER') THEN
    CREATE ROLE $SHOPSTREAM_DB_USER LOGIN CREATEDB PASSWORD '$SHOPSTREAM_DB_PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $SHOPSTREAM_DB_USER OWNER $SHOPSTREAM_DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$SHOPSTREAM_DB_USER') \gexec
SQL
}

# A second cluster of the machine's PostgreSQL that the outage test may stop and start without
# disturbing the others. Exports SHOPSTREAM_TEST_OUTAGE_CLUSTER and SHOPSTREAM_TEST_OUTAGE_URL.
ensure_outage_cluster() {
    local name=shopstream_outage
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $name"; then
        as_root pg_createcluster "$PG_VERSION" "$name" >/dev/null
    fi
    if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$name" '$1==v && $2==c {print $4}' | grep -q online; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$name" start
    fi
    local port; port="$(cluster_port "$name")"
    create_role_and_database "$port"
    export SHOPSTREAM_TEST_OUTAGE_CLUSTER="$PG_VERSION $name"
    export SHOPSTREAM_TEST_OUTAGE_URL="postgres://$SHOPSTREAM_DB_USER:$SHOPSTREAM_DB_PASSWORD@127.0.0.1:$port/$SHOPSTREAM_DB_USER"
}

# Installs the tansu broker (a Kafka-compatible broker in Rust) once; the binary stays in ~/.cargo/bin.
ensure_tansu() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if command -v tansu >/dev/null; then return; fi
    log "Installing the tansu Kafka-protocol broker (cargo install, about 8 minutes, once per machine)."
    cargo install tansu --locked --features dynostore
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for a server started in the background to listen on loopback port $1; on
# time-out prints what $2 (its name) wrote to its log $3 and fails.
wait_for_port() {
    for _ in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "$2 did not start; its log:" >&2; cat "$3" >&2; return 1
}

# Starts tansu with in-memory storage on a free loopback port; exports KAFKA_BROKERS and TANSU_PID.
start_tansu() {
    ensure_tansu
    local port; port="$(free_port)"
    local logfile="${TMPDIR:-/tmp}/shopstream-tansu-$port.log"
    tansu broker --storage-engine memory://tansu/ \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" >"$logfile" 2>&1 &
    TANSU_PID=$!
    export TANSU_PID TANSU_LOG="$logfile"
    wait_for_port "$port" tansu "$logfile" || return 1
    export KAFKA_BROKERS="127.0.0.1:$port"
    log "tansu broker listening on $KAFKA_BROKERS (log: $logfile)."
}

stop_tansu() {
    if [ -n "${TANSU_PID:-}" ]; then kill "$TANSU_PID" 2>/dev/null || true; wait "$TANSU_PID" 2>/dev/null || true; fi
}

# Installs s3s-fs (an S3-protocol server over a directory, in Rust) once; the binary stays in
# ~/.cargo/bin. 0.14.1 is the last release that builds with the rustc of these machines.
ensure_s3s() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if command -v s3s-fs >/dev/null; then return; fi
    log "Installing the s3s-fs S3-protocol server (cargo install, about 6 minutes, once per machine)."
    cargo install s3s-fs --version 0.14.1 --features binary --locked
}

# Starts s3s-fs on a free loopback port over a temporary directory holding one bucket
# (shopstream-test; tests use a prefix each). Exports SHOPSTREAM_TEST_S3_ENDPOINT,
# SHOPSTREAM_TEST_S3_BUCKET, the AWS_* variables a watcher reads, and S3_PID.
start_s3() {
    ensure_s3s
    local port; port="$(free_port)"
    S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/shopstream-s3.XXXXXX")"
    mkdir -p "$S3_DIR/shopstream-test"
    local logfile="$S3_DIR.log"
    local key="shopstream-test-key" secret="shopstream-test-secret"
    s3s-fs --host 127.0.0.1 --port "$port" --access-key "$key" --secret-key "$secret" "$S3_DIR" >"$logfile" 2>&1 &
    S3_PID=$!
    export S3_PID S3_DIR
    wait_for_port "$port" s3s-fs "$logfile" || return 1
    export SHOPSTREAM_TEST_S3_ENDPOINT="http://127.0.0.1:$port" SHOPSTREAM_TEST_S3_BUCKET="shopstream-test"
    export AWS_ENDPOINT_URL="$SHOPSTREAM_TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$key" \
        AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION="us-east-1" AWS_ALLOW_HTTP="true"
    log "s3s-fs listening on $SHOPSTREAM_TEST_S3_ENDPOINT, bucket shopstream-test (log: $logfile)."
}

stop_s3() {
    if [ -n "${S3_PID:-}" ]; then kill "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true; fi
    if [ -n "${S3_DIR:-}" ]; then rm -rf "$S3_DIR" "$S3_DIR.log"; fi
}

# Headless Chromium for the dashboard's browser test (tests/it/dashboard.rs); apt-get once.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ]; then return; fi
    log "Installing chromium with apt-get (browser test of the dashboard)."
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
