#!/usr/bin/env bash
# galera.sh — a three-node MariaDB Galera cluster on loopback, for tests and chaos runs.
#
# Uses Debian's mariadb-server (/usr/sbin/mariadbd, mariadb-install-db) and galera-4
# (/usr/lib/galera/libgalera_smm.so). Run as root; the servers run as the `mysql` user (as the
# Debian service does: rsync SST run as root would drop to `nobody` and fail), so DIR must be
# reachable by that user: `up` adds o+x to any ancestor directory that blocks it (e.g. a
# 0700 directory made by mktemp -d / tempfile.mkdtemp).
#
#   galera.sh up     DIR [BASE_PORT]   create (first time) and start the cluster, print node URLs
#   galera.sh start  DIR N             (re)start node N (1..3) so it rejoins; waits until Synced
#   galera.sh stop   DIR N             clean shutdown of node N
#   galera.sh kill   DIR N             SIGKILL node N (simulated crash)
#   galera.sh status DIR               per node: running?, wsrep_local_state_comment, wsrep_cluster_size
#   galera.sh down   DIR [--purge]     stop all nodes (SIGKILL after a timeout); --purge removes DIR
#
# Ports, from BASE_PORT (default 4306), for node N = 1..3:
#   SQL (127.0.0.1)       BASE_PORT + N-1          4306 4307 4308
#   Galera group (gcomm)  BASE_PORT + 100 + N-1    4406 4407 4408
#   IST receiver          BASE_PORT + 200 + N-1    4506 4507 4508
#   SST receiver (rsync)  BASE_PORT + 300 + N-1    4606 4607 4608
# Two clusters coexist when their BASE_PORTs differ by at least 3 and by less than 97
# (e.g. 4306 and 4316). 3306, 4444, 4567 and 4568 are refused.
#
# Layout of DIR: cluster.env (BASE_PORT), nodeN/{my.cnf,error.log,console.log,mysqld.sock,
# mariadbd.pid} and nodeN/data (the datadir; grastate.dat and galera.cache live there).
# SST method: rsync (the rsync package is installed with apt-get when missing).
# Account: c360/c360 on % , 127.0.0.1 and localhost, ALL ON *.* WITH GRANT OPTION; database c360.
# Root: root@localhost with an empty password, reachable only through each node's socket.
#
# Environment: GALERA_TIMEOUT (seconds to wait for Synced, default 120),
#              GALERA_STOP_TIMEOUT (seconds before a stop turns into SIGKILL, default 60).
set -euo pipefail

MARIADBD=/usr/sbin/mariadbd
PROVIDER=/usr/lib/galera/libgalera_smm.so
TIMEOUT=${GALERA_TIMEOUT:-120}
STOP_TIMEOUT=${GALERA_STOP_TIMEOUT:-60}
NODES=(1 2 3)

log() { printf '%s galera.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ---- paths and ports -------------------------------------------------------

ndir() { echo "$DIR/node$1"; }
sql_port() { echo $((BASE_PORT + $1 - 1)); }
grp_port() { echo $((BASE_PORT + 100 + $1 - 1)); }
ist_port() { echo $((BASE_PORT + 200 + $1 - 1)); }
sst_port() { echo $((BASE_PORT + 300 + $1 - 1)); }

load_env() {
  [[ -f $DIR/cluster.env ]] && DIR=$(cd "$DIR" && pwd)
  [[ -f $DIR/cluster.env ]] || die "$DIR is not a cluster directory (no cluster.env); run: $0 up $DIR"
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  [[ -n ${BASE_PORT:-} ]] || die "$DIR/cluster.env has no BASE_PORT"
}

check_node_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "node number must be 1, 2 or 3 (got '${1:-}')"
}

# ---- process helpers -------------------------------------------------------

# pid of node N's mariadbd if it is running (checked against /proc cmdline), else empty.
node_pid() {
  local pf pid
  pf="$(ndir "$1")/mariadbd.pid"
  [[ -s $pf ]] || return 0
  pid=$(tr -dc '0-9' <"$pf")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--defaults-file=$(ndir "$1")/my.cnf"; then
    echo "$pid"
  fi
}

is_running() { [[ -n $(node_pid "$1") ]]; }

# True while process $1 exists and is not a zombie (PID 1 may reap late in containers).
pid_alive() {
  local s
  s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && $s != Z ]]
}

# Run a query on node N through its socket as root; prints tab-separated rows.
q() {
  local n=$1; shift
  mariadb --no-defaults -uroot -S "$(ndir "$n")/mysqld.sock" --connect-timeout=2 -N -B -e "$*" 2>/dev/null
}

status_var() { q "$1" "SHOW GLOBAL STATUS LIKE '$2'" | awk -F'\t' '{print $2}'; }

# Wait until node N is Synced (and, if given, sees a cluster of at least $2 nodes).
wait_synced() {
  local n=$1 want_size=${2:-1} deadline state size
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! is_running "$n"; then
      log "node$n exited while starting; tail of $(ndir "$n")/error.log:"
      tail -n 40 "$(ndir "$n")/error.log" >&2 || true
      return 1
    fi
    state=$(status_var "$n" wsrep_local_state_comment || true)
    if [[ $state == Synced ]]; then
      size=$(status_var "$n" wsrep_cluster_size || true)
      if [[ -n $size ]] && ((size >= want_size)); then
        return 0
      fi
    fi
    sleep 0.5
  done
  log "node$n not Synced after ${TIMEOUT}s (state='${state:-}'); tail of $(ndir "$n")/error.log:"
  tail -n 40 "$(ndir "$n")/error.log" >&2 || true
  return 1
}

# ---- configuration ---------------------------------------------------------

validate_ports() {
  [[ $BASE_PORT =~ ^[0-9]+$ ]] || die "BASE_PORT must be a number"
  ((BASE_PORT >= 1024 && BASE_PORT + 302 <= 65535)) || die "BASE_PORT out of range"
  local n p
  for n in "${NODES[@]}"; do
    for p in "$(sql_port "$n")" "$(grp_port "$n")" "$(ist_port "$n")" "$(sst_port "$n")"; do
      case $p in 3306 | 4444 | 4567 | 4568) die "BASE_PORT $BASE_PORT would use reserved port $p" ;; esac
    done
  done
}

# Refuse to start a fresh cluster over ports someone else already listens on.
check_ports_free() {
  local n p
  for n in "${NODES[@]}"; do
    for p in "$(sql_port "$n")" "$(grp_port "$n")"; do
      if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        die "port $p is already in use"
      fi
    done
  done
}

write_cnf() {
  local n=$1 d addrs
  d=$(ndir "$n")
  addrs="127.0.0.1:$(grp_port 1),127.0.0.1:$(grp_port 2),127.0.0.1:$(grp_port 3)"
  cat >"$d/my.cnf" <<EOF
# Generated by deploy/galera.sh for node$n of the cluster in $DIR (BASE_PORT=$BASE_PORT).
[mysqld]
user                           = mysql
bind-address                   = 127.0.0.1
port                           = $(sql_port "$n")
socket                         = $d/mysqld.sock
pid-file                       = $d/mariadbd.pid
datadir                        = $d/data
log-error                      = $d/error.log
skip-name-resolve
max_connections                = 300
binlog_format                  = ROW
default_storage_engine         = InnoDB
innodb_autoinc_lock_mode       = 2
innodb_buffer_pool_size        = 64M
innodb_log_file_size           = 48M
innodb_flush_log_at_trx_commit = 2
# HAProxy's TCP health checks (deploy/haproxy.sh) open and drop a connection twice a second;
# at the default log_warnings=2 each one logs an "Aborted connection" warning.
log_warnings                   = 1

wsrep_on                       = ON
wsrep_provider                 = $PROVIDER
wsrep_cluster_name             = c360-galera-$BASE_PORT
wsrep_cluster_address          = gcomm://$addrs
wsrep_node_name                = node$n
wsrep_node_address             = 127.0.0.1:$(grp_port "$n")
wsrep_node_incoming_address    = 127.0.0.1:$(sql_port "$n")
wsrep_sst_method               = rsync
wsrep_sst_receive_address      = 127.0.0.1:$(sst_port "$n")
# gcache large enough that a node killed for a while rejoins by IST; failure detection a
# little faster than the defaults (suspect 5s, inactive 15s) for chaos tests.
wsrep_provider_options         = "base_host=127.0.0.1;base_port=$(grp_port "$n");gmcast.listen_addr=tcp://127.0.0.1:$(grp_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=256M;evs.keepalive_period=PT1S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT10S;evs.install_timeout=PT10S"
EOF
}

ensure_rsync() {
  if ! command -v rsync >/dev/null 2>&1; then
    log "installing rsync (needed for rsync SST)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null; }
  fi
}

# The servers run as `mysql`: every directory above DIR must be searchable by it. A
# mkdtemp()-made parent is 0700; grant it (and any other blocking ancestor) o+x only.
ensure_reachable() {
  local d=$DIR
  while [[ $d != / ]]; do
    d=$(dirname "$d")
    if ! runuser -u mysql -- test -x "$d"; then
      chmod o+x "$d"
      log "granted search permission (o+x) on $d so that the mysql user reaches $DIR"
    fi
  done
  runuser -u mysql -- test -w "$(ndir 1)" || die "the mysql user cannot write to $(ndir 1)"
}

init_dir() {
  local n
  check_ports_free
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  for n in "${NODES[@]}"; do
    mkdir -p "$(ndir "$n")"
    chown mysql:mysql "$(ndir "$n")"
  done
  ensure_reachable
  log "initialising datadir of node1 (mariadb-install-db)"
  rm -rf "$(ndir 1)/data"
  mariadb-install-db --no-defaults --user=mysql --datadir="$(ndir 1)/data" \
    --auth-root-authentication-method=normal --skip-test-db \
    --skip-name-resolve >"$(ndir 1)/install.log" 2>&1 ||
    { tail -n 30 "$(ndir 1)/install.log" >&2; die "mariadb-install-db failed"; }
  # Joiners receive a full SST on first start anyway; a copy gives them valid system tables.
  for n in 2 3; do
    rm -rf "$(ndir "$n")/data"
    cp -a "$(ndir 1)/data" "$(ndir "$n")/data"
  done
  for n in "${NODES[@]}"; do write_cnf "$n"; done
  echo "BASE_PORT=$BASE_PORT" >"$DIR/cluster.env"
}

# ---- grastate / recovery ---------------------------------------------------

grastate_field() { # node field -> value (empty when unknown)
  local f
  f="$(ndir "$1")/data/grastate.dat"
  [[ -f $f ]] || return 0
  awk -v k="$2:" '$1 == k {print $2}' "$f"
}

# If node N crashed (grastate seqno -1), find its position with mariadbd --wsrep-recover,
# as Debian's galera_recovery does. Prints "uuid:seqno" or nothing.
recover_position() {
  local n=$1 d seqno pos
  d=$(ndir "$n")
  seqno=$(grastate_field "$n" seqno)
  [[ $seqno == -1 ]] || return 0
  log "node$n: grastate seqno is -1 (crash); running mariadbd --wsrep-recover"
  "$MARIADBD" --defaults-file="$d/my.cnf" --wsrep-recover \
    --log-error="$d/recover.log" --pid-file="$d/recover.pid" </dev/null >/dev/null 2>&1 || true
  pos=$(grep -a 'WSREP: Recovered position:' "$d/recover.log" 2>/dev/null | tail -n 1 |
    sed 's/.*Recovered position:[[:space:]]*//' | tr -d '[:space:]')
  if [[ $pos =~ ^[0-9a-f-]{36}:[0-9]+$ ]]; then
    log "node$n: recovered position $pos"
    echo "$pos"
  else
    log "node$n: no position recovered (${pos:-none})"
  fi
}

# ---- starting and stopping -------------------------------------------------

# launch N [extra mariadbd args...]: start node N's mariadbd in the background, detached.
launch() {
  local n=$1 d pid; shift
  d=$(ndir "$n")
  rm -f "$d/mysqld.sock" "$d/mariadbd.pid"
  setsid "$MARIADBD" --defaults-file="$d/my.cnf" "$@" </dev/null >>"$d/console.log" 2>&1 &
  pid=$!
  echo "$pid" >"$d/mariadbd.pid"
  chown mysql:mysql "$d/mariadbd.pid"
  log "node$n: started mariadbd pid $pid $*"
}

# How the node joined: look at the error log written since byte offset $2.
join_method() {
  local n=$1 off=$2 part
  part=$(tail -c +"$((off + 1))" "$(ndir "$n")/error.log" 2>/dev/null || true)
  if grep -q 'SST completed on joiner\|Installed new state from SST' <<<"$part" &&
    ! grep -q 'IST completed on joiner' <<<"$part"; then
    echo "full SST"
  elif grep -q 'IST completed on joiner\|Receiving IST:' <<<"$part"; then
    echo "IST: $(grep -o 'Receiving IST: [0-9]* writesets' <<<"$part" | tail -n 1 | grep -o '[0-9]* writesets' || echo 'no writesets')"
  else
    echo "no state transfer"
  fi
}

start_node() { # start_node N [--bootstrap]
  local n=$1 mode=${2:-} pos off args=() others=0 m
  if is_running "$n"; then
    log "node$n already running (pid $(node_pid "$n"))"
    wait_synced "$n"
    return 0
  fi
  for m in "${NODES[@]}"; do
    [[ $m != "$n" ]] && is_running "$m" && others=$((others + 1))
  done
  if [[ $mode != --bootstrap ]] && ((others == 0)); then
    die "no other node of $DIR is running; use '$0 up $DIR' to bootstrap the cluster"
  fi
  pos=$(recover_position "$n")
  [[ -n $pos ]] && args+=("--wsrep-start-position=$pos")
  if [[ $mode == --bootstrap ]]; then
    if [[ -f $(ndir "$n")/data/grastate.dat ]]; then
      sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$(ndir "$n")/data/grastate.dat"
    fi
    args+=(--wsrep-new-cluster)
  fi
  off=$(stat -c %s "$(ndir "$n")/error.log" 2>/dev/null || echo 0)
  local t0=$SECONDS
  launch "$n" "${args[@]}"
  wait_synced "$n" || exit 1
  log "node$n Synced after $((SECONDS - t0))s ($(join_method "$n" "$off"); cluster size $(status_var "$n" wsrep_cluster_size))"
}

stop_node() { # stop_node N [timeout]
  local n=$1 t=${2:-$STOP_TIMEOUT} pid deadline
  pid=$(node_pid "$n")
  if [[ -z $pid ]]; then
    log "node$n not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + t))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "node$n (pid $pid) still running after ${t}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  log "node$n stopped"
}

kill_node() {
  local n=$1 pid
  pid=$(node_pid "$n")
  if [[ -z $pid ]]; then
    log "node$n not running"
    return 0
  fi
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.05; done
  log "node$n (pid $pid) killed with SIGKILL"
}

print_urls() {
  local n
  for n in "${NODES[@]}"; do
    echo "node$n mysql://c360:c360@127.0.0.1:$(sql_port "$n")/c360"
  done
}

create_account() { # on node N (replicated to the cluster)
  local anon
  # Anonymous accounts would shadow c360@'%' for local connections, and install-db's
  # passwordless root@127.0.0.1/::1/hostname are reachable over TCP: drop them (DROP USER
  # is replicated, unlike DML on the mysql tables). root@localhost (socket) stays.
  anon=$(q "$1" "SELECT GROUP_CONCAT(CONCAT(\"'\", User, \"'@'\", Host, \"'\")) FROM mysql.user
                 WHERE User='' OR (User='root' AND Host<>'localhost')") || true
  if [[ -n $anon && $anon != NULL ]]; then q "$1" "DROP USER $anon" || true; fi
  q "$1" "
    CREATE USER IF NOT EXISTS 'c360'@'%' IDENTIFIED BY 'c360';
    CREATE USER IF NOT EXISTS 'c360'@'127.0.0.1' IDENTIFIED BY 'c360';
    CREATE USER IF NOT EXISTS 'c360'@'localhost' IDENTIFIED BY 'c360';
    GRANT ALL PRIVILEGES ON *.* TO 'c360'@'%' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON *.* TO 'c360'@'127.0.0.1' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON *.* TO 'c360'@'localhost' WITH GRANT OPTION;
    CREATE DATABASE IF NOT EXISTS c360;" || die "could not create the c360 account on node$1"
}

# ---- commands --------------------------------------------------------------

cmd_up() {
  local t0=$SECONDS n running=() boot best best_seq seq pos
  if [[ -f $DIR/cluster.env ]]; then
    local want=${1:-}
    load_env
    [[ -z $want || $want == "$BASE_PORT" ]] || die "$DIR was created with BASE_PORT=$BASE_PORT, not $want"
  else
    BASE_PORT=${1:-4306}
    validate_ports
    ensure_rsync
    init_dir
  fi
  ensure_rsync
  for n in "${NODES[@]}"; do is_running "$n" && running+=("$n"); done

  if ((${#running[@]} == 3)); then
    log "cluster in $DIR already running"
    print_urls
    return 0
  fi

  if ((${#running[@]} == 0)); then
    # Bootstrap: a node marked safe_to_bootstrap (it left last, cleanly), else the highest seqno.
    boot=""
    for n in "${NODES[@]}"; do
      if [[ $(grastate_field "$n" safe_to_bootstrap) == 1 ]]; then boot=$n; break; fi
    done
    if [[ -z $boot ]]; then
      best=1 best_seq=-2
      for n in "${NODES[@]}"; do
        seq=$(grastate_field "$n" seqno)
        if [[ -z $seq ]]; then seq=-1; fi
        if [[ $seq == -1 ]]; then
          pos=$(recover_position "$n")
          [[ -n $pos ]] && seq=${pos##*:}
        fi
        if ((seq > best_seq)); then best=$n best_seq=$seq; fi
      done
      boot=$best
    fi
    log "bootstrapping a new cluster from node$boot"
    start_node "$boot" --bootstrap
    create_account "$boot"
    running=("$boot")
  else
    log "nodes running: ${running[*]}; starting the others"
    wait_synced "${running[0]}"
  fi

  for n in "${NODES[@]}"; do
    is_running "$n" || start_node "$n"
  done
  for n in "${NODES[@]}"; do
    wait_synced "$n" 3 || die "node$n does not see a cluster of 3"
  done
  create_account 1
  log "cluster up in $((SECONDS - t0))s: $DIR (BASE_PORT $BASE_PORT)"
  print_urls
}

cmd_status() {
  local n pid state size
  for n in "${NODES[@]}"; do
    pid=$(node_pid "$n")
    if [[ -n $pid ]]; then
      state=$(status_var "$n" wsrep_local_state_comment || true)
      size=$(status_var "$n" wsrep_cluster_size || true)
      echo "node$n running pid=$pid port=$(sql_port "$n") state=${state:-unknown} cluster_size=${size:-unknown}"
    else
      echo "node$n down port=$(sql_port "$n")"
    fi
  done
}

cmd_down() {
  local purge=$1 n
  if [[ -f $DIR/cluster.env ]]; then
    load_env
    # Stop in reverse order so node1 leaves last and is marked safe_to_bootstrap.
    for n in 3 2 1; do stop_node "$n" 30; done
  elif [[ -d $DIR ]]; then
    log "$DIR has no cluster.env; nothing to stop"
  fi
  if [[ $purge == 1 && -d $DIR ]]; then
    rm -rf "$DIR"
    log "removed $DIR"
  fi
}

main() {
  [[ $(id -u) == 0 ]] || die "run as root"
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  case $cmd in
    up)
      [[ $# -ge 1 ]] || usage
      DIR=$1
      cmd_up "${2:-}"
      ;;
    start | stop | kill)
      [[ $# -eq 2 ]] || usage
      DIR=$1
      check_node_arg "$2"
      load_env
      case $cmd in
        start) start_node "$2" ;;
        stop) stop_node "$2" ;;
        kill) kill_node "$2" ;;
      esac
      ;;
    status)
      [[ $# -eq 1 ]] || usage
      DIR=$1
      load_env
      cmd_status
      ;;
    down)
      local purge=0 a
      DIR=""
      for a in "$@"; do
        case $a in
          --purge) purge=1 ;;
          *) DIR=$a ;;
        esac
      done
      [[ -n $DIR ]] || usage
      cmd_down "$purge"
      ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
