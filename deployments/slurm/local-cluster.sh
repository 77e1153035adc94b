#!/usr/bin/env bash
# A one-node Slurm 22.05 cluster on this machine (Debian packages), with a fake GPU and accounting
# (slurmdbd + MariaDB, so sacct works). For trying the slurm work pool on one machine, and for CI.
#   sudo bash deployments/slurm/local-cluster.sh install   # apt packages, once
#   sudo bash deployments/slurm/local-cluster.sh start     # configure and start every daemon
#   sudo bash deployments/slurm/local-cluster.sh stop
# Partitions: cpu (default) and gpu (Gres=gpu:1 backed by /dev/null). Needs root.
set -euo pipefail
HOST=$(hostname -s)
CLUSTER=medgen
CONF=/etc/slurm
STATE=/var/spool/medgen-slurm
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

log() { echo "[slurm] $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
    log "packages already installed"; return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

write_conf() {
  mkdir -p "$CONF" "$STATE"/{ctld,d} /var/log/slurm /run/slurm
  cat > "$CONF/slurm.conf" <<CONF
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
  cat > "$CONF/gres.conf" <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
CONF
  cat > "$CONF/slurmdbd.conf" <<CONF
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
  chmod 600 "$CONF/slurmdbd.conf"
}

# A killed daemon can linger as a zombie (PID 1 here may not reap), which pgrep would still count.
alive() { ps -C "$1" -o stat= 2>/dev/null | grep -qv '^Z'; }

wait_for() { # seconds, description, command...
  local n=$1 what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$what not up after ${n}s"; return 1
}

start() {
  install
  write_conf
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 400 /etc/munge/munge.key
  alive munged || su -s /bin/sh munge -c "/usr/sbin/munged"
  wait_for 10 munge munge -n

  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! alive mariadbd; then
    (mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/slurm/mariadb.log 2>&1 &)
  fi
  wait_for 30 mariadb mysqladmin ping
  mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  alive slurmdbd || slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  alive slurmctld || slurmctld
  alive slurmd || slurmd
  wait_for 30 "node $HOST" bash -c "sinfo -h -N -o '%T' | grep -qE 'idle|mix|alloc'"
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  log "up: $(sinfo -h -o '%P %a %D %T' | tr '\n' ';')"
}

stop() {
  local d
  for d in slurmd slurmctld slurmdbd; do pkill -x "$d" 2>/dev/null || true; done
  mysqladmin shutdown 2>/dev/null || pkill -x mariadbd 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  # A daemon still exiting would make `start` think it is up.
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    for _ in $(seq 20); do alive "$d" || break; sleep 0.5; done
  done
  log "stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  restart) stop; start ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
