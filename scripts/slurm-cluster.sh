#!/usr/bin/env bash
# A one-node Slurm cluster from Debian's packages (slurm-wlm, munge), for test/launch/slurm.test.ts.
#
#   scripts/slurm-cluster.sh install   install the packages when missing (root + apt-get); exit 3 when it cannot
#   scripts/slurm-cluster.sh up        install, write the config, start munged, slurmctld and slurmd, and wait
#                                      until the node has registered (quick when already up)
#   scripts/slurm-cluster.sh down      stop the daemons this script started, by their pid files
#
# No systemd is needed. Everything lives under $PAIRGEN_SLURM_DIR (default .cache/slurm); clients find
# the cluster through SLURM_CONF=$PAIRGEN_SLURM_DIR/slurm.conf (`up` prints that line last).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${PAIRGEN_SLURM_DIR:-$REPO/.cache/slurm}
CONF=$DIR/slurm.conf
MUNGE_PID=/run/munge/munged.pid

say() { echo "slurm-cluster: $*" >&2; }

install() {
  if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "Slurm is not installed and this machine cannot install it (needs root and apt-get: apt-get install slurm-wlm munge)"
    exit 3
  fi
  say "installing slurm-wlm and munge (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local node; node=$(slurmd -C | head -n 1) # NodeName=<hostname -s> CPUs=... RealMemory=... as slurmd sees them
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF.new" <<EOF
# Written by scripts/slurm-cluster.sh: a one-node test cluster, no accounting database, no cgroups.
ClusterName=pairgen
SlurmctldHost=$(hostname -s)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued task may start again once its credential expired: 5 s is the least Slurm accepts; 10 here.
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$CONF.new" "$CONF"; then rm "$CONF.new"; return 1; fi
  mv "$CONF.new" "$CONF"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
  touch "$DIR/munged.ours" # `down` stops only a munged this script started
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "munged did not answer; see /var/log/munge/munged.log"
  exit 1
}

registered() {
  local info; info=$(SLURM_CONF=$CONF scontrol show node "$(hostname -s)" 2>/dev/null) || return 1
  # "idle" in sinfo can precede the node's registration; slurmd's start time is set only when it has registered.
  grep -q 'SlurmdStartTime=[0-9]' <<<"$info" && grep -Eq 'State=IDLE|State=MIXED|State=ALLOCATED' <<<"$info" &&
    ! grep -Eq 'State=[A-Z+]*(NOT_RESPONDING|DRAIN|INVAL|DOWN)' <<<"$info"
}

up() {
  install
  local changed=0
  write_conf && changed=1
  start_munge
  if [ $changed = 0 ] && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && registered; then
    echo "SLURM_CONF=$CONF"
    return 0
  fi
  stop_slurm
  say "starting slurmctld and slurmd ($CONF)"
  # -i: ignore state files from an earlier cluster; jobs of a stopped test cluster are not wanted. Job ids
  # start again at 1, so the completion log of the earlier cluster goes too.
  rm -f "$DIR/log/jobcomp.txt"
  slurmctld -f "$CONF" -i
  slurmd -f "$CONF"
  for _ in $(seq 300); do
    if registered; then echo "SLURM_CONF=$CONF"; return 0; fi
    sleep 0.1
  done
  say "the node did not register within 30 s; see $DIR/log/slurmctld.log and $DIR/log/slurmd.log"
  exit 1
}

stop_pid() {
  local file=$1
  alive "$file" || { rm -f "$file"; return 0; }
  local pid; pid=$(cat "$file")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop_slurm() {
  stop_pid "$DIR/slurmd.pid"
  stop_pid "$DIR/slurmctld.pid"
}

down() {
  stop_slurm
  if [ -e "$DIR/munged.ours" ]; then stop_pid "$MUNGE_PID"; rm -f "$DIR/munged.ours"; fi
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 install|up|down" >&2; exit 2 ;;
esac
