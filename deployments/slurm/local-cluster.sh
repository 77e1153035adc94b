#!/usr/bin/env bash
# A one-node Slurm 22.05 cluster on this machine (Debian packages), with a fake GPU and accounting
# (slurmdbd + MariaDB, so sacct works). For trying the slurm work pool on one machine, and for CI.
#   sudo bash deployments/slurm/local-cluster.sh install     # apt packages, once
#   sudo bash deployments/slurm/local-cluster.sh start       # configure and start every daemon not yet running
#   sudo bash deployments/slurm/local-cluster.sh stop        # stop the daemons this script started
#   sudo bash deployments/slurm/local-cluster.sh configure   # only write the config files
#   sudo bash deployments/slurm/local-cluster.sh clear       # cancel every job in the queue (CI starts empty)
# Partitions: cpu (default) and gpu (Gres=gpu:1 backed by /dev/null). Needs root.
#
# Safe beside what already runs here: a config file this script did not write is copied to
# <file>.medgen-backup-<time> before it is replaced; a daemon already running is used, never restarted,
# and `stop` stops only the daemons whose pids this script recorded in $RUN; a MariaDB it did not start
# gets no users or grants (give slurmdbd's user access yourself, see start_mariadb).
# MEDGEN_SLURM_CONF_DIR and MEDGEN_SLURM_RUN_DIR move the config files (the daemons and clients started here
# then read $SLURM_CONF) and the pid records, for trying the script out away from /etc/slurm.
set -euo pipefail
HOST=$(hostname -s)
CLUSTER=medgen
CONF=${MEDGEN_SLURM_CONF_DIR:-/etc/slurm}
RUN=${MEDGEN_SLURM_RUN_DIR:-/run/medgen-slurm}  # <daemon>.pid for each daemon this script started
STATE=/var/spool/medgen-slurm
MARK="# Written by medgen's deployments/slurm/local-cluster.sh; replaced on each start."
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
if [ -n "${MEDGEN_SLURM_CONF_DIR:-}" ]; then export SLURM_CONF=$CONF/slurm.conf; fi

log() { echo "[slurm] $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
    log "packages already installed"; return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

put_conf() { # file, mode: stdin becomes the file; one this script did not write is backed up first
  local file=$1 mode=$2 tmp
  tmp=$(mktemp "$file.XXXXXX")
  { echo "$MARK"; cat; } > "$tmp"
  chmod "$mode" "$tmp"
  if [ -e "$file" ] && [ "$(head -n 1 "$file")" != "$MARK" ]; then
    local backup
    backup="$file.medgen-backup-$(date +%Y%m%d-%H%M%S)"
    cp -p "$file" "$backup"
    log "backed up $file (not written by this script) to $backup"
  fi
  mv -f "$tmp" "$file"
}

write_conf() {
  mkdir -p "$CONF"
  put_conf "$CONF/slurm.conf" 644 <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SchedulerParameters=sched_interval=2
MinJobAge=300
FirstJobId=$(( $(date +%s) % 100000 * 10 + 1000 ))
ReturnToService=2
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
CONF
  put_conf "$CONF/gres.conf" 644 <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
CONF
  put_conf "$CONF/slurmdbd.conf" 600 <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
CONF
}

# A killed daemon can linger as a zombie (PID 1 here may not reap), which pgrep would still count.
alive() { ps -C "$1" -o stat= 2>/dev/null | grep -qv '^Z'; }

ours() { # daemon: true while the process this script recorded for it still runs (and is that daemon)
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] &&
    ! grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null
}

wait_for() { # seconds, description, command...
  local n=$1 what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$what not up after ${n}s"; return 1
}

start_daemon() { # daemon, its own pid file, command...: start it unless it runs; record its pid if started here
  local name=$1 pidfile=$2; shift 2
  if alive "$name"; then
    ours "$name" || log "$name already running (not started by this script): using it"
    return
  fi
  rm -f "$pidfile"  # stale: its daemon is not running
  "$@"
  wait_for 30 "$name pid file" test -s "$pidfile"
  mkdir -p "$RUN"
  cp "$pidfile" "$RUN/$name.pid"
}

start_mariadb() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start_daemon mariadbd /run/mysqld/medgen-mariadbd.pid \
    bash -c 'mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/medgen-mariadbd.pid \
             >/var/log/slurm/mariadb.log 2>&1 &'
  wait_for 30 mariadb mysqladmin ping
  if ours mariadbd; then
    mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
              CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  elif ! mysql -h 127.0.0.1 -u slurm -pslurm -e "SELECT 1" >/dev/null 2>&1; then
    log "MariaDB runs but was not started by this script, and slurmdbd's user cannot log in; as its admin, run:"
    log "  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
    return 1
  fi
}

end_lost_jobs() {
  # The controller's saved state can list jobs as running that died with the machine (stopped, rebooted in a
  # container, restored from a snapshot): the node's boot time has not changed, so Slurm waits for them and
  # holds the node until their time limits. Downing the node ends them the way a node failure does (requeued
  # where they asked for it); the resume below returns the node.
  local lost
  lost=$(squeue -h -w "$HOST" -t RUNNING,COMPLETING,CONFIGURING -o %i | paste -sd, -)
  [ -n "$lost" ] || return 0
  log "jobs $lost were running when the cluster went down: ending them as a node failure"
  scontrol update nodename="$HOST" state=down reason="medgen local-cluster.sh: restarted, its jobs were lost"
  wait_for 30 "the lost jobs to end" bash -c "[ -z \"\$(squeue -h -w $HOST -t RUNNING,COMPLETING,CONFIGURING -o %i)\" ]" || true
}

start() {
  install
  if alive slurmctld && ! ours slurmctld && [ -e "$CONF/slurm.conf" ] && [ "$(head -n 1 "$CONF/slurm.conf")" != "$MARK" ]; then
    log "a slurmctld this script did not start runs with $CONF/slurm.conf: leaving that cluster as it is"
    return 1
  fi
  # Cold: no daemon survives, so no job can still be running whatever the saved state says.
  local cold=0
  if ! alive slurmctld && ! alive slurmd && ! alive slurmstepd; then cold=1; fi
  write_conf
  mkdir -p "$STATE"/{ctld,d} /var/log/slurm /run/slurm
  if ! alive munged; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
    chmod 400 /etc/munge/munge.key
  fi
  start_daemon munged /run/munge/munged.pid su -s /bin/sh munge -c /usr/sbin/munged
  wait_for 10 munge munge -n
  start_mariadb
  start_daemon slurmdbd /run/slurm/slurmdbd.pid slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  start_daemon slurmctld /run/slurm/slurmctld.pid slurmctld
  start_daemon slurmd /run/slurm/slurmd.pid slurmd
  wait_for 30 "node $HOST" bash -c "sinfo -h -N -o '%T' | grep -qE 'idle|mix|alloc'"
  if ((cold)); then end_lost_jobs; fi
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  log "up: $(sinfo -h -o '%P %a %D %T' | tr '\n' ';')"
}

clear_queue() {
  local jobs
  jobs=$(squeue -h -o %i | paste -sd, -)
  [ -n "$jobs" ] || return 0
  log "cancelling jobs $jobs"
  squeue -h -o %i | xargs -r scancel
  wait_for 60 "the queue to empty" bash -c '[ -z "$(squeue -h -o %i)" ]'
}

stop() {
  local d pid
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    if ours "$d"; then
      pid=$(cat "$RUN/$d.pid")
      kill "$pid" 2>/dev/null || true
      # A daemon still exiting would make `start` think it is up.
      for _ in $(seq 40); do ours "$d" || break; sleep 0.5; done
      log "stopped $d (pid $pid)"
    elif alive "$d"; then
      log "$d runs but was not started by this script: left running"
    fi
    rm -f "$RUN/$d.pid"
  done
}

case "${1:-}" in
  install) install ;;
  configure) write_conf ;;
  start) start ;;
  stop) stop ;;
  clear) clear_queue ;;
  status) sinfo && squeue ;;
  restart) stop; start ;;
  *) echo "usage: $0 install|configure|start|stop|restart|status|clear" >&2; exit 2 ;;
esac
