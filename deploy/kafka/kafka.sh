#!/usr/bin/env bash
# Apache Kafka for tests and local runs: one KRaft node (broker + controller) on 127.0.0.1, from Maven jars.
#
#   kafka.sh fetch                                   download the jars into lib/ (skipped when up to date)
#   kafka.sh start [--port P] [--dir D] [--controller-port C] [--security-dir S --sasl-ssl-port P2 --ssl-port P3]
#                                                    format D (first start only) and start the broker in the
#                                                    background; prints the bootstrap address once it answers.
#                                                    With S (ca.pem, server.pem = key + certificate, scram-users
#                                                    = `name password` lines): also a SASL_SSL listener (SCRAM-SHA-512)
#                                                    on P2 and an SSL listener requiring client certificates on P3
#   kafka.sh stop [--dir D] [--kill]                 SIGTERM (SIGKILL after KAFKA_STOP_TIMEOUT s); --kill: SIGKILL now
#   kafka.sh status [--dir D]                        exit 0 and print the bootstrap address if running
#
# D defaults to deploy/kafka/run. A second start on the same D keeps its data, cluster id and ports.
# Exit codes: 0 ok, 1 failure, 64 usage, 77 java, mvn or python missing.
# Environment: KAFKA_VERSION (another kafka_2.13 version), KAFKA_HEAP_OPTS (default -Xms128m -Xmx512m),
# KAFKA_OPTS (more JVM options), KAFKA_START_TIMEOUT (default 90 s), KAFKA_STOP_TIMEOUT (default 30 s),
# KAFKA_CDS=0 (no class-data archive), JAVA_HOME, PYTHON, KAFKA_LIB_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LIB="${KAFKA_LIB_DIR:-$HERE/lib}"
EX_USAGE=64
EX_MISSING=77

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "$1"; exit "${2:-1}"; }

find_java() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        JAVA="$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        JAVA="$(command -v java)"
    else
        die "java not found (Kafka 4.x needs Java 17+): install a JDK or set JAVA_HOME" "$EX_MISSING"
    fi
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" "$REPO/.venv/bin/python" python3 python; do
        if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1; then
            PY="$(command -v "$candidate")"
            return
        fi
    done
    die "python not found (needed to probe the broker): install python3 or set PYTHON" "$EX_MISSING"
}

probe() { "$PY" "$HERE/probe.py" "$@"; }

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1; else shasum -a 256 | cut -d' ' -f1; fi
}

fetch_key() { { cat "$HERE/pom.xml"; printf 'kafka.version=%s\n' "${KAFKA_VERSION:-}"; } | sha256; }

kafka_version() {
    local jar
    for jar in "$LIB"/kafka_2.13-*.jar; do
        [[ -e "$jar" ]] || break
        jar="${jar##*/kafka_2.13-}"
        printf '%s\n' "${jar%.jar}"
        return
    done
    printf 'unknown\n'
}

cmd_fetch() {
    local key
    key="$(fetch_key)"
    if [[ -f "$LIB/.fetched" && "$(cat "$LIB/.fetched")" == "$key" ]]; then
        say "Apache Kafka $(kafka_version) jars up to date in $LIB"
        return 0
    fi
    find_java
    command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven fetches the Kafka jars): install Maven" "$EX_MISSING"
    local tmp
    mkdir -p "$(dirname "$LIB")"
    tmp="$(mktemp -d "${LIB%/}.tmp.XXXXXX")"
    chmod 755 "$tmp"
    local -a args=(-B -q -Dstyle.color=never -f "$HERE/pom.xml" package "-Dkafka.lib.dir=$tmp")
    [[ -n "${KAFKA_VERSION:-}" ]] && args+=("-Dkafka.version=$KAFKA_VERSION")
    say "fetching the Apache Kafka jars with Maven (cached in ~/.m2 and $LIB)"
    if ! mvn "${args[@]}" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "mvn could not fetch the Kafka jars (is the Maven repository reachable?)"
    fi
    rm -f "$tmp.log"
    printf '%s\n' "$key" >"$tmp/.fetched"
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    say "Apache Kafka $(kafka_version) jars in $LIB"
}

cds_archive() {  # lib/cds/<JVM build>.jsa
    local build
    build="$("$JAVA" -Xshare:off -version 2>&1 | sha256)"
    printf '%s/cds/%s.jsa\n' "$LIB" "${build:0:16}"
}

install_cds_archive() {  # after the broker exited: keep the archive its first run wrote
    [[ -s "$DIR/kafka.jsa" && "${KAFKA_CDS:-1}" != 0 ]] || { rm -f "$DIR/kafka.jsa"; return 0; }
    find_java
    local archive
    archive="$(cds_archive)"
    if [[ ! -f "$archive" ]] && mkdir -p "$LIB/cds" && cp "$DIR/kafka.jsa" "$archive.tmp.$$"; then
        mv -f "$archive.tmp.$$" "$archive"
    fi
    rm -f "$DIR/kafka.jsa" "$archive.tmp.$$"
}

running_pid() {  # prints the broker's pid if $DIR's broker runs
    local pid
    [[ -f "$DIR/kafka.pid" ]] || return 1
    pid="$(cat "$DIR/kafka.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then  # not a recycled pid: the process runs kafka.Kafka with our config
        tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$DIR/server.properties" || return 1
    fi
    printf '%s\n' "$pid"
}

parse_args() {  # sets PORT, CONTROLLER_PORT, DIR, KILL, SECURITY_DIR, SASL_SSL_PORT, SSL_PORT
    PORT="" CONTROLLER_PORT="" DIR="$HERE/run" KILL="" SECURITY_DIR="" SASL_SSL_PORT="" SSL_PORT=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) [[ $# -ge 2 ]] || die "--port needs a value" "$EX_USAGE"; PORT="$2"; shift 2 ;;
            --controller-port) [[ $# -ge 2 ]] || die "--controller-port needs a value" "$EX_USAGE"
                CONTROLLER_PORT="$2"; shift 2 ;;
            --dir) [[ $# -ge 2 ]] || die "--dir needs a value" "$EX_USAGE"; DIR="$2"; shift 2 ;;
            --kill) KILL=1; shift ;;
            --security-dir) [[ $# -ge 2 ]] || die "--security-dir needs a value" "$EX_USAGE"; SECURITY_DIR="$2"
                shift 2 ;;
            --sasl-ssl-port) [[ $# -ge 2 ]] || die "--sasl-ssl-port needs a value" "$EX_USAGE"; SASL_SSL_PORT="$2"
                shift 2 ;;
            --ssl-port) [[ $# -ge 2 ]] || die "--ssl-port needs a value" "$EX_USAGE"; SSL_PORT="$2"; shift 2 ;;
            *) die "unknown argument: $1" "$EX_USAGE" ;;
        esac
    done
    for value in "$PORT" "$CONTROLLER_PORT" "$SASL_SSL_PORT" "$SSL_PORT"; do
        [[ -z "$value" || "$value" =~ ^[0-9]+$ ]] || die "not a port: $value" "$EX_USAGE"
    done
    [[ ! -d "$DIR" ]] || DIR="$(cd "$DIR" && pwd)"
    if [[ -n "$SECURITY_DIR" ]]; then
        [[ -n "$SASL_SSL_PORT" && -n "$SSL_PORT" ]] || die "--security-dir needs --sasl-ssl-port and --ssl-port" "$EX_USAGE"
        local file
        for file in ca.pem server.pem scram-users; do
            [[ -r "$SECURITY_DIR/$file" ]] || die "--security-dir $SECURITY_DIR has no readable $file" "$EX_USAGE"
        done
        SECURITY_DIR="$(cd "$SECURITY_DIR" && pwd)"
    fi
}

security_section() {  # the listeners' TLS stores (PEM), SCRAM and the authorizer; $SECURITY_DIR is set
    cat <<PROPERTIES

# Security (kafka.sh start --security-dir): SASL_SSL with SCRAM-SHA-512, and SSL with required client certificates.
sasl.enabled.mechanisms=SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# OAUTHBEARER with Kafka's default validator: unsecured (alg none) JWTs, the principal is their `sub` (tests only).
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$SECURITY_DIR/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURITY_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
# ACLs: PLAINTEXT clients (ANONYMOUS, the existing tests and the controller), the first SCRAM user and the client
# certificate's subject may do everything; any other SCRAM user gets only what an ACL grants (none by default).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS;User:$(head -n 1 "$SECURITY_DIR/scram-users" | cut -d' ' -f1);User:CN=tailwatch-client
PROPERTIES
}

scram_args() {  # --add-scram for every `name password` line of scram-users
    local name password
    while read -r name password; do
        [[ -n "$name" ]] && printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$name" "$password"
    done <"$SECURITY_DIR/scram-users"
}

cmd_start() {
    parse_args "$@"
    find_java
    find_python
    local pid
    if pid="$(running_pid)"; then
        die "a broker already runs from $DIR (pid $pid, 127.0.0.1:$(cat "$DIR/port")); stop it first"
    fi
    [[ -f "$LIB/.fetched" ]] || cmd_fetch
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    local started="${EPOCHREALTIME:-$SECONDS}"
    # Ports: given, else the ones of the previous start on this dir, else 9092 and a free one.
    [[ -n "$PORT" ]] || PORT="$(cat "$DIR/port" 2>/dev/null || echo 9092)"
    if [[ -z "$CONTROLLER_PORT" ]]; then
        CONTROLLER_PORT="$(cat "$DIR/controller-port" 2>/dev/null || true)"
        if [[ -z "$CONTROLLER_PORT" || "$CONTROLLER_PORT" == "$PORT" ]] || ! probe port-free "$CONTROLLER_PORT"; then
            CONTROLLER_PORT="$(probe free-port)"
        fi
    fi
    [[ "$PORT" != "$CONTROLLER_PORT" ]] || die "--port and --controller-port must differ" "$EX_USAGE"
    probe port-free "$PORT" || die "127.0.0.1:$PORT is in use: pick another --port"
    probe port-free "$CONTROLLER_PORT" || die "controller port 127.0.0.1:$CONTROLLER_PORT is in use"
    printf '%s\n' "$PORT" >"$DIR/port"
    printf '%s\n' "$CONTROLLER_PORT" >"$DIR/controller-port"
    local extra_listeners=""
    if [[ -n "$SECURITY_DIR" ]]; then
        for value in "$SASL_SSL_PORT" "$SSL_PORT"; do
            [[ "$value" != "$PORT" && "$value" != "$CONTROLLER_PORT" ]] || die "the listener ports must differ" "$EX_USAGE"
            probe port-free "$value" || die "127.0.0.1:$value is in use: pick another port"
        done
        extra_listeners=",SASL_SSL://127.0.0.1:$SASL_SSL_PORT,SSL://127.0.0.1:$SSL_PORT"
    fi

    local config
    config="$(<"$HERE/server.properties.template")"
    config="${config//@PORT@/$PORT}"
    config="${config//@CONTROLLER_PORT@/$CONTROLLER_PORT}"
    config="${config//@DATA_DIR@/$DIR/data}"
    config="${config//@EXTRA_LISTENERS@/$extra_listeners}"
    [[ -z "$SECURITY_DIR" ]] || config+="$(security_section)"
    printf '%s\n' "$config" >"$DIR/server.properties"
    mkdir -p "$DIR/logs"

    local classpath
    classpath="$(printf '%s:' "$LIB"/*.jar)"  # sorted, so a class-data archive matches from run to run
    classpath="${classpath%:}"
    local -a log_opts=("-Dlog4j2.configurationFile=$HERE/log4j2.properties" "-Dkafka.logs.dir=$DIR/logs")

    # Class-data sharing (JDK 13+ dynamic archive): the first broker run records the classes it loaded into
    # <dir>/kafka.jsa when it exits; `stop` moves that to lib/cds/, keyed by the JVM build, and later starts
    # map it instead of loading ~5000 classes again (about 2-3 s less per start). KAFKA_CDS=0 turns it off.
    local -a cds_opts=() cds_share=()
    rm -f "$DIR/kafka.jsa"
    if [[ "${KAFKA_CDS:-1}" != 0 ]]; then
        local archive
        archive="$(cds_archive)"
        if [[ -f "$archive" ]]; then
            cds_opts=(-Xshare:auto "-XX:SharedArchiveFile=$archive")
            cds_share=("${cds_opts[@]}")  # the format tool shares most of those classes
        else
            cds_opts=("-XX:ArchiveClassesAtExit=$DIR/kafka.jsa" "-Xlog:cds*=error")  # no "Skipping class" noise
        fi
    fi

    local cluster_id
    if [[ -f "$DIR/data/meta.properties" ]]; then
        cluster_id="$(sed -n 's/^cluster\.id=//p' "$DIR/data/meta.properties")"
    else
        cluster_id="$(probe cluster-id)"
        local -a scram=()
        [[ -z "$SECURITY_DIR" ]] || mapfile -t scram < <(scram_args)  # SCRAM users live in the metadata log
        if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 "${cds_share[@]}" "${log_opts[@]}" -cp "$classpath" \
                kafka.tools.StorageTool format -t "$cluster_id" -c "$DIR/server.properties" "${scram[@]}" \
                >"$DIR/logs/format.log" 2>&1; then
            cat "$DIR/logs/format.log" >&2
            die "formatting $DIR/data failed"
        fi
    fi

    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS and KAFKA_OPTS are lists of options
    local -a java_cmd=("$JAVA" ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
        "${cds_opts[@]}" "${log_opts[@]}" ${KAFKA_OPTS:-} -cp "$classpath" kafka.Kafka "$DIR/server.properties")
    local setsid=()
    command -v setsid >/dev/null 2>&1 && setsid=(setsid)  # own session: a Ctrl-C on the caller does not reach it
    printf '\n=== start %s ===\n' "$(date -u +%FT%TZ)" >>"$DIR/logs/server.log"
    "${setsid[@]}" "${java_cmd[@]}" </dev/null >>"$DIR/logs/server.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$DIR/kafka.pid"

    local rc=0
    probe wait-ready "$PORT" "$pid" "$cluster_id" "${KAFKA_START_TIMEOUT:-90}" || rc=$?
    if [[ $rc -ne 0 ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$DIR/kafka.pid"
        say "the broker did not start; the end of $DIR/logs/server.log:"
        tail -n 40 "$DIR/logs/server.log" >&2
        exit 1
    fi
    say "Apache Kafka $(kafka_version) ready on 127.0.0.1:$PORT in $(elapsed "$started")s (pid $pid, dir $DIR)"
    printf '127.0.0.1:%s\n' "$PORT"
}

elapsed() {  # seconds since $1 (EPOCHREALTIME or SECONDS), one decimal
    local now="${EPOCHREALTIME:-$SECONDS}"
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

wait_gone() {  # pid, seconds: 0 once the process is gone
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        [[ $SECONDS -lt $deadline ]] || return 1
        sleep 0.1
    done
}

cmd_stop() {
    parse_args "$@"
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$DIR/kafka.pid"
        say "no broker runs from $DIR"
        return 0
    fi
    if [[ -n "$KILL" ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
        say "killed the broker (pid $pid)"
    else
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "${KAFKA_STOP_TIMEOUT:-30}"; then
            say "the broker (pid $pid) did not stop within ${KAFKA_STOP_TIMEOUT:-30}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
        fi
        say "stopped the broker (pid $pid)"
    fi
    rm -f "$DIR/kafka.pid"
    install_cds_archive
}

cmd_status() {
    parse_args "$@"
    local pid
    if pid="$(running_pid)"; then
        say "running (pid $pid, Apache Kafka $(kafka_version))"
        printf '127.0.0.1:%s\n' "$(cat "$DIR/port")"
    else
        say "no broker runs from $DIR"
        return 1
    fi
}

case "${1:-}" in
    fetch) shift; [[ $# -eq 0 ]] || die "fetch takes no arguments" "$EX_USAGE"; cmd_fetch ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit "$EX_USAGE" ;;
esac
