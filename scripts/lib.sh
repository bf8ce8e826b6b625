# Shared by scripts/dev, scripts/test and scripts/bench: make sure PostgreSQL and nats-server
# (with JetStream) answer, starting or installing them when they do not.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${ROOT}/.dev"
mkdir -p "${STATE_DIR}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
NATS_HOST="${NATS_HOST:-127.0.0.1}"
NATS_PORT="${NATS_PORT:-4222}"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {
    local host=$1 port=$2 what=$3 tries=${4:-60}
    for _ in $(seq "${tries}"); do
        port_open "${host}" "${port}" && return 0
        sleep 0.5
    done
    die "${what} did not start listening on ${host}:${port}"
}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        die "$* is missing; install it (Debian: apt-get install $*) or run this script as root"
    fi
    log "installing $* with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A cargo subcommand from crates.io (`cargo-deny`), installed when missing.
ensure_cargo_tool() {
    local tool=$1
    if ! cargo "${tool#cargo-}" --version >/dev/null 2>&1; then
        log "installing ${tool} (one-time)"
        cargo install "${tool}" --locked
    fi
}

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# PostgreSQL on PG_HOST:PG_PORT with a superuser `postgres` reachable over TCP.
ensure_postgres() {
    if port_open "${PG_HOST}" "${PG_PORT}"; then
        log "PostgreSQL answers on ${PG_HOST}:${PG_PORT}"
        return
    fi
    if [ -z "$(pg_bin_dir)" ]; then
        apt_install postgresql
    fi
    if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
        local version
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        log "starting the system PostgreSQL ${version} cluster"
        pg_ctlcluster --skip-systemctl-redirect "${version}" main start || true
    fi
    if ! port_open "${PG_HOST}" "${PG_PORT}"; then
        # No system cluster: run a private one in .dev/postgres with trust auth on loopback.
        local bin data="${STATE_DIR}/postgres"
        bin="$(pg_bin_dir)"
        log "starting a private PostgreSQL in ${data}"
        local as=()
        if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); chown -R postgres "${STATE_DIR}" 2>/dev/null || true; mkdir -p "${data}"; chown postgres "${data}"; fi
        if [ ! -f "${data}/PG_VERSION" ]; then
            "${as[@]}" "${bin}/initdb" -D "${data}" -U postgres --auth=trust >/dev/null
        fi
        "${as[@]}" "${bin}/pg_ctl" -D "${data}" -l "${data}/server.log" \
            -o "-p ${PG_PORT} -k /tmp -c listen_addresses=${PG_HOST}" start >/dev/null
    fi
    wait_for_port "${PG_HOST}" "${PG_PORT}" PostgreSQL
    # Fresh Debian clusters ask for a password over TCP; give the local superuser trust there.
    if ! psql -h "${PG_HOST}" -p "${PG_PORT}" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
        local hba
        hba="$(ls /etc/postgresql/*/main/pg_hba.conf 2>/dev/null | sort -V | tail -1)"
        if [ -n "${hba}" ] && [ "$(id -u)" = 0 ]; then
            log "allowing trust authentication for postgres on loopback (development only)"
            sed -i '1i host all postgres 127.0.0.1/32 trust' "${hba}"
            runuser -u postgres -- psql -c 'select pg_reload_conf()' >/dev/null
            sleep 1
        fi
    fi
    psql -h "${PG_HOST}" -p "${PG_PORT}" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1 \
        || die "cannot log in to PostgreSQL on ${PG_HOST}:${PG_PORT} as postgres"
}

# nats-server with JetStream on NATS_HOST:NATS_PORT.
ensure_nats() {
    if port_open "${NATS_HOST}" "${NATS_PORT}"; then
        log "NATS answers on ${NATS_HOST}:${NATS_PORT}"
        return
    fi
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
    local bin
    bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
    log "starting nats-server with JetStream (store in ${STATE_DIR}/nats)"
    mkdir -p "${STATE_DIR}/nats"
    nohup "${bin}" -a "${NATS_HOST}" -p "${NATS_PORT}" -js -sd "${STATE_DIR}/nats" \
        >"${STATE_DIR}/nats.log" 2>&1 &
    wait_for_port "${NATS_HOST}" "${NATS_PORT}" nats-server
}

# The Kubernetes manifest validator (PyPI `kubernetes-validate`, which bundles the Kubernetes
# OpenAPI schemas, so validating needs no network), used by api/tests/manifests.rs.
ensure_manifest_validator() {
    local python="${PYTHON:-python3}"
    command -v "${python}" >/dev/null || apt_install python3 python3-pip
    if ! "${python}" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
        log "installing kubernetes-validate with pip"
        "${python}" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" \
            || "${python}" -m pip install --quiet --disable-pip-version-check --break-system-packages "kubernetes-validate==1.37.0" \
            || die "cannot install kubernetes-validate (pip install kubernetes-validate)"
    fi
}

# A Python package for the test suite's validators, installed with pip when missing.
pip_ensure() {
    local module=$1 requirement=$2 python="${PYTHON:-python3}"
    command -v "${python}" >/dev/null || apt_install python3 python3-pip
    "${python}" -c "import ${module}" 2>/dev/null && return
    log "installing ${requirement} with pip"
    "${python}" -m pip install --quiet --disable-pip-version-check "${requirement}" \
        || "${python}" -m pip install --quiet --disable-pip-version-check --break-system-packages "${requirement}" \
        || die "cannot install ${requirement} (pip install ${requirement})"
}

# The contract validators (api/tests/api/contracts.rs): openapi-spec-validator (PyPI) for the
# api's OpenAPI document, and the AsyncAPI project's parser (npm, locked in docs/validate) for
# docs/asyncapi.json.
ensure_contract_validators() {
    pip_ensure openapi_spec_validator "openapi-spec-validator==0.9.0"
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
    if [ ! -f "${ROOT}/docs/validate/node_modules/@asyncapi/parser/package.json" ]; then
        log "installing the AsyncAPI parser with npm (docs/validate)"
        (cd "${ROOT}/docs/validate" \
            && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
            || die "cannot install docs/validate's packages (cd docs/validate && npm ci)"
    fi
}

# promtool (Debian's prometheus package) checks and unit-tests deploy/prometheus/alerts.yaml
# (through deploy/prometheus/check.py, which reads it with PyYAML) and the PromQL of the
# Grafana dashboard.
ensure_promtool() {
    pip_ensure yaml "PyYAML>=6"
    command -v promtool >/dev/null && return
    apt_install prometheus
    # Only promtool is wanted: where the package started its server (systemd), stop it, so it
    # does not hold port 9090 (the workers' default WORKER_HTTP_ADDR).
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        log "stopping the prometheus service the package started (only promtool is needed)"
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
}

# The nats-server binary itself: the NATS permission tests start private servers with it,
# even when the shared server runs elsewhere.
ensure_nats_server_binary() {
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
}

# The storefront's npm packages, pinned by examples/storefront/package-lock.json: openapi-fetch,
# the typed client the page calls the api through; openapi-typescript and the TypeScript
# compiler, which generate its types from the api's OpenAPI document and check and build it
# (scripts/check, api/tests/api/storefront.rs); playwright-core, which drives its browser test.
# Installed again when the lock file is newer than the installed packages.
ensure_storefront_packages() {
    { command -v node >/dev/null && command -v npm >/dev/null; } || apt_install nodejs npm
    local dir="${ROOT}/examples/storefront"
    if [ ! -f "${dir}/node_modules/.package-lock.json" ] \
        || [ "${dir}/package-lock.json" -nt "${dir}/node_modules/.package-lock.json" ]; then
        log "installing the storefront's packages with npm (examples/storefront)"
        (cd "${dir}" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
            || die "cannot install the storefront's packages (npm ci in ${dir})"
    fi
}

# The storefront's types, generated from the OpenAPI document the api prints (`api openapi`,
# the document it serves), then the storefront type-checked against them: a change of the
# HTTP contract that would break the page fails here.
check_storefront_types() {
    ensure_storefront_packages
    local dir="${ROOT}/examples/storefront"
    cargo run --quiet --package api -- openapi >"${dir}/openapi.json"
    (cd "${dir}" && npm run --silent types >/dev/null && npm run --silent check)
}

# Headless Chromium (Debian's package), which loads the interactive docs under their CSP and
# runs the storefront's browser test (api/tests/api/storefront.rs), and the storefront's
# packages.
ensure_browser_test_tools() {
    [ -x /usr/bin/chromium ] || apt_install chromium
    ensure_storefront_packages
}

ensure_services() {
    command -v psql >/dev/null || apt_install postgresql-client
    ensure_postgres
    ensure_nats
}
