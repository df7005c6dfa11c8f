#!/usr/bin/env bash
# A real single-node Slurm with accounting, for tests and CI: `up`, `down`, `status`.
#
#   bash scripts/slurm-local.sh up      # install what is missing (apt), start, wait for an idle node
#   bash scripts/slurm-local.sh status  # daemons alive? node state?
#   bash scripts/slurm-local.sh down    # stop by PID file, in reverse start order
#
# Needs root (Debian/Ubuntu). Everything it writes (configs, state, spool, logs, PID files, the
# MariaDB data folder) lives in $SLURM_LOCAL_DIR (default /tmp/fwbench-slurm). Clients find the
# config through /etc/slurm/slurm.conf, which is made a link to ours only when no other config is
# there; otherwise `export SLURM_CONF=$SLURM_LOCAL_DIR/etc/slurm.conf`.
# Why each step is as it is: docs/notes/slurm.md (measured on this kind of machine).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/fwbench-slurm}
CLUSTER=${SLURM_LOCAL_CLUSTER:-fwbench}
DB_PORT=${SLURM_LOCAL_DB_PORT:-3306}
DB_PASS=fwbench-slurmdbd
ETC=$DIR/etc
RUN=$DIR/run
LOG=$DIR/log
DBRUN=$DIR/mysqld   # owned by mysql: MariaDB writes its socket and PID here
CONF=$ETC/slurm.conf
export SLURM_CONF=$CONF

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what (logs: $LOG)"
    sleep 0.5
  done
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local need=()
  for pkg in slurmctld slurmd slurm-client munge slurmdbd mariadb-server; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  ((${#need[@]} == 0)) && return 0
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

write_configs() {
  install -d "$ETC" "$RUN" "$LOG" "$DIR/state" "$DIR/spool"
  install -d -o mysql -g mysql "$DBRUN"
  # The node line comes from the hardware slurmd sees; RealMemory at 90% leaves the OS room.
  local hw cpus sockets cores threads mem
  hw=$(slurmd -C | head -1)
  field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
  cpus=$(field CPUs) sockets=$(field SocketsPerBoard) cores=$(field CoresPerSocket)
  threads=$(field ThreadsPerCore) mem=$(($(field RealMemory) * 9 / 10))
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a single-node Slurm for tests.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
# Without a default, a job that asks no memory gets the whole node and jobs run one at a time.
DefMemPerCPU=1000
MailProg=/bin/true
# A requeued job waits cred_expire seconds before it may start again (default 120): 10 keeps
# the requeue test short. Real clusters keep their own.
AuthInfo=cred_expire=10
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ETC/slurmdbd.conf"  # slurmdbd refuses a readable config (it holds a password)
  # Clients (sinfo, sbatch, sacct: submitit calls them) read /etc/slurm/slurm.conf by default.
  mkdir -p /etc/slurm
  if [[ ! -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
    ln -sfn "$CONF" /etc/slurm/slurm.conf
  fi
}

start_munge() {
  alive "$RUN/munged.pid" && return 0
  [[ -f /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
  install -d -o munge -g munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
    --log-file=/var/log/munge/munged.log
  wait_for 20 munged bash -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUN/munged.pid"
}

mysql_root() { mariadb --no-defaults --socket="$DBRUN/mysqld.sock" -u root "$@"; }

start_mariadb() {
  alive "$RUN/mariadb.pid" && return 0
  if [[ ! -d $DIR/mysql/mysql ]]; then
    install -d -o mysql -g mysql "$DIR/mysql"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql" \
      --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1
  fi
  setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql" --bind-address=127.0.0.1 \
    --port="$DB_PORT" --socket="$DBRUN/mysqld.sock" --pid-file="$DBRUN/mariadb.pid" \
    --log-error="$LOG/mariadb.log" --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadb mysqladmin --no-defaults --socket="$DBRUN/mysqld.sock" ping
  cp "$DBRUN/mariadb.pid" "$RUN/mariadb.pid"
  mysql_root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
  if ! alive "$RUN/slurmdbd.pid"; then
    slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
    wait_for 60 slurmdbd sacctmgr -n show cluster
  fi
  sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" ||
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

node_idle() { sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'; }

start_slurm() {
  alive "$RUN/slurmctld.pid" || slurmctld -f "$CONF"
  wait_for 30 slurmctld scontrol ping
  alive "$RUN/slurmd.pid" || slurmd -f "$CONF"
  wait_for 60 "an idle node" node_idle
}

up() {
  [[ $(id -u) == 0 ]] || die "needs root (it installs packages and starts daemons)"
  install_packages
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  say "up: $(sinfo -h -N -o '%N %T %c CPUs %m MB') (config $CONF)"
}

# stop NAME: SIGTERM the PID in $RUN/NAME.pid and wait until it is gone.
stop() {
  local pidfile=$RUN/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

down() {
  # Reverse order: slurmdbd logs reconnect errors if MariaDB goes first.
  stop slurmd
  stop slurmctld
  stop slurmdbd
  stop mariadb
  stop munged
  [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$CONF" ]] &&
    rm -f /etc/slurm/slurm.conf
  say "down"
}

status() {
  local rc=0
  for d in munged mariadb slurmdbd slurmctld slurmd; do
    if alive "$RUN/$d.pid"; then echo "$d: running (pid $(cat "$RUN/$d.pid"))"
    else echo "$d: stopped"; rc=1; fi
  done
  ((rc == 0)) && sinfo -h -N -o 'node %N: %T'
  return $rc
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
