#!/usr/bin/env bash
# A fresh GPU node in one command: what the infra runbook's Boostrap.sh did, idempotently, plus the node's worker.
#
#   sudo deploy/bootstrap.sh                          # a Celery worker on queues dagster,gpu
#   sudo deploy/bootstrap.sh --worker code-server     # the head node's code server instead
#   sudo deploy/bootstrap.sh --dry-run                # print what it would do, change nothing
#   deploy/bootstrap.sh --root /tmp/node              # a scratch root: only the files, under /tmp/node
#
# Each step looks first and acts only when something is missing, so a second run changes nothing:
#   1. base packages (apt-get)          4. storage paths NEXA_SCRATCH, NEXA_DURABLE, NEXA_SHARED
#   2. AWS CLI v2 (aws s3 sync/ls)      5. /etc/nexa/nexa.env (paths, NEXA_REPO, NCCL/OMP/tokenizer defaults,
#   3. the project's .venv (make setup)    NEXA_S3_PREFIX) and /etc/profile.d/nexa.sh for login shells
#      and the NVML bindings (pynvml)   6. nexa-worker.service (systemd), enabled and started
# Lines read `ok` (already so), `change`/`would` (done / would be done), `skip` (not here, and why).
# With --root other than /, steps outside the file system (apt, AWS CLI, make, chown, systemctl) are skipped.
# No credential is written by this script: they belong in $NEXA_REPO/.env.local (mode 600) or an IAM role.
set -euo pipefail
export LC_ALL=C

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "bootstrap: error: $*" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=/
DRY=0
WORKER=celery
QUEUES=dagster,gpu
DAGSTER_HOME_DIR=""
S3_PREFIX=s3://nexacompute/ML_Checkpoints
SCRATCH=/mnt/nexa_scratch
DURABLE=/mnt/nexa_durable
SHARED=/mnt/nexa_shared
OMP_THREADS=8
SERVICE_USER=""
CODE_SERVER_PORT=4000
PACKAGES=(python3 python3-venv python3-dev build-essential git make curl unzip ca-certificates jq tmux htop)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --root) ROOT="${2:?--root needs a folder}"; shift ;;
    --repo) REPO="${2:?--repo needs a folder}"; shift ;;
    --worker) WORKER="${2:?--worker needs celery, code-server or none}"; shift ;;
    --queues) QUEUES="${2:?--queues needs e.g. dagster,gpu}"; shift ;;
    --dagster-home) DAGSTER_HOME_DIR="${2:?--dagster-home needs a folder}"; shift ;;
    --s3-prefix) S3_PREFIX="${2:?--s3-prefix needs s3://bucket/prefix}"; shift ;;
    --scratch) SCRATCH="${2:?--scratch needs a folder}"; shift ;;
    --durable) DURABLE="${2:?--durable needs a folder}"; shift ;;
    --shared) SHARED="${2:?--shared needs a folder}"; shift ;;
    --omp-threads) OMP_THREADS="${2:?--omp-threads needs a number}"; shift ;;
    --user) SERVICE_USER="${2:?--user needs a user name}"; shift ;;
    --port) CODE_SERVER_PORT="${2:?--port needs a number}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

case "$WORKER" in celery|code-server|none) ;; *) die "--worker $WORKER: expected celery, code-server or none" ;; esac
[[ "$S3_PREFIX" == s3://?* ]] || die "--s3-prefix $S3_PREFIX: expected s3://bucket[/prefix]"
[[ "$OMP_THREADS" =~ ^[1-9][0-9]*$ ]] || die "--omp-threads $OMP_THREADS: expected a whole number"
[[ "$CODE_SERVER_PORT" =~ ^[1-9][0-9]*$ ]] || die "--port $CODE_SERVER_PORT: expected a port number"
for value in "$REPO" "$SCRATCH" "$DURABLE" "$SHARED" "$S3_PREFIX" "$QUEUES" "$DAGSTER_HOME_DIR"; do
  # The env file is read by systemd and by sh: a value with blanks or quotes would mean different things to each.
  [[ "$value" =~ [[:space:]\'\"\$\\] ]] && die "'$value': no blanks, quotes, \$ or backslashes in paths and names"
done
for path in "$SCRATCH" "$DURABLE" "$SHARED"; do [[ "$path" == /* ]] || die "$path: storage paths must be absolute"; done
[[ -f "$REPO/pyproject.toml" ]] || die "--repo $REPO: no pyproject.toml there; pass the NexaCompute checkout"
REPO="$(cd "$REPO" && pwd)"
DAGSTER_HOME_DIR="${DAGSTER_HOME_DIR:-$REPO/deploy}"
SERVICE_USER="${SERVICE_USER:-$(stat -c %U "$REPO")}"  # whoever owns the checkout runs its worker
[[ -d "$ROOT" ]] || die "--root $ROOT: no such folder"
ROOT="$(cd "$ROOT" && pwd)"
[[ "$ROOT" == / ]] && ROOT=""  # paths below are "$ROOT/etc/...": empty means the real system
if [[ -z "$ROOT" && $DRY -eq 0 && $EUID -ne 0 ]]; then
  die "run it as root (sudo), or with --dry-run, or with --root DIR for a scratch root"
fi

CHANGES=0
ok() { printf 'ok      %s\n' "$1"; }
skip() { printf 'skip    %s (%s)\n' "$1" "$2"; }
# act DESCRIPTION COMMAND...: do it (or say it would), and count it.
act() {
  local what="$1"; shift
  CHANGES=$((CHANGES + 1))
  if [[ $DRY -eq 1 ]]; then printf 'would   %s\n' "$what"; return 0; fi
  printf 'change  %s\n' "$what"
  "$@"
}
on_system() { [[ -z "$ROOT" ]]; }
VENV_PY="$REPO/.venv/bin/python"

# --- 1. base packages ------------------------------------------------------------------------------------------
step_packages() {
  if ! on_system; then skip "base packages: ${PACKAGES[*]}" "scratch root"; return; fi
  if ! command -v apt-get >/dev/null 2>&1; then skip "base packages" "no apt-get: install ${PACKAGES[*]} by hand"; return; fi
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then ok "base packages"; return; fi
  act "apt-get install ${missing[*]}" apt_install "${missing[@]}"
}
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- 2. AWS CLI ------------------------------------------------------------------------------------------------
step_awscli() {
  if ! on_system; then skip "AWS CLI v2" "scratch root"; return; fi
  if command -v aws >/dev/null 2>&1; then ok "AWS CLI ($(aws --version 2>&1 | cut -d' ' -f1))"; return; fi
  act "install AWS CLI v2 under /usr/local" install_awscli
}
install_awscli() {
  local tmp
  tmp="$(mktemp -d)"
  curl -fsSL "https://awscli.amazonaws.com/awscli-exe-linux-$(uname -m).zip" -o "$tmp/awscliv2.zip"
  unzip -q "$tmp/awscliv2.zip" -d "$tmp"
  "$tmp/aws/install" --update
  rm -rf "$tmp"
}

# --- 3. the project and the NVML bindings ----------------------------------------------------------------------
step_project() {
  if ! on_system; then skip "project virtualenv: make -C $REPO setup" "scratch root"; return; fi
  if [[ -f "$REPO/.venv/.installed" ]]; then ok "project virtualenv $REPO/.venv"; return; fi
  act "make -C $REPO setup (as $SERVICE_USER)" as_service_user make -C "$REPO" setup
}
as_service_user() {
  if [[ "$SERVICE_USER" == "$(id -un)" ]]; then "$@"; else runuser -u "$SERVICE_USER" -- "$@"; fi
}
step_nvml() {
  if ! on_system; then skip "NVML bindings (pynvml)" "scratch root"; return; fi
  if [[ ! -x "$VENV_PY" ]]; then skip "NVML bindings (pynvml)" "make setup installs nvidia-ml-py"; return; fi
  if "$VENV_PY" -c 'import pynvml' 2>/dev/null; then ok "NVML bindings (pynvml)"
  else act "pip install nvidia-ml-py" as_service_user "$VENV_PY" -m pip install -q nvidia-ml-py; fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    # One pool slot per GPU: the number to give the `gpu` pool (deploy/README.md, sizing).
    ok "GPUs on this node: $(nvidia-smi -L | grep -c '^GPU')"
  else
    skip "GPU check" "no nvidia-smi: install the NVIDIA driver for this node's GPUs"
  fi
}

# --- 4. storage paths ------------------------------------------------------------------------------------------
step_dirs() {
  local path
  for path in "$SCRATCH" "$DURABLE" "$SHARED"; do
    if [[ -d "$ROOT$path" ]]; then ok "folder $path"; else act "mkdir -p $path" mkdir -p "$ROOT$path"; fi
    if on_system && [[ "$(stat -c %U "$path" 2>/dev/null || echo "$SERVICE_USER")" != "$SERVICE_USER" ]]; then
      act "chown $SERVICE_USER $path" chown "$SERVICE_USER:" "$path"
    fi
  done
}

# --- 5 and 6. files --------------------------------------------------------------------------------------------
# put_file PATH MODE CONTENT: write PATH (under the root) when its content or mode differ; atomically.
UNIT_CHANGED=0
put_file() {
  local path="$1" mode="$2" content="$3" target="$ROOT$1"
  if [[ -f "$target" ]] && printf '%s' "$content" | cmp -s - "$target" && [[ "$(stat -c %a "$target")" == "$mode" ]]; then
    ok "file $path"; return
  fi
  [[ "$path" == */systemd/* ]] && UNIT_CHANGED=1
  act "write $path" write_file "$target" "$mode" "$content"
}
write_file() {
  local target="$1" mode="$2" content="$3" tmp
  mkdir -p "$(dirname "$target")"
  tmp="$(mktemp "$(dirname "$target")/.bootstrap.XXXXXX")"
  printf '%s' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$target"
}

env_file() {
  cat <<EOF
# Written by deploy/bootstrap.sh: this node's defaults (systemd EnvironmentFile and sh syntax). No credentials:
# those go in $REPO/.env.local (mode 600), which nexa and the worker read under this environment.
NEXA_REPO=$REPO
NEXA_SCRATCH=$SCRATCH
NEXA_DURABLE=$DURABLE
NEXA_SHARED=$SHARED
NEXA_S3_PREFIX=$S3_PREFIX
DAGSTER_HOME=$DAGSTER_HOME_DIR
NCCL_DEBUG=INFO
NCCL_IB_DISABLE=1
NCCL_P2P_DISABLE=0
TOKENIZERS_PARALLELISM=false
OMP_NUM_THREADS=$OMP_THREADS
EOF
}

profile_file() {
  cat <<'EOF'
# Written by deploy/bootstrap.sh: the node's NexaCompute defaults in every login shell.
if [ -r /etc/nexa/nexa.env ]; then
  set -a
  . /etc/nexa/nexa.env
  set +a
fi
EOF
}

worker_command() {
  if [[ "$WORKER" == celery ]]; then
    # The project's Celery app (nexa_dagster/execution/worker.py): the broker (NEXA_CELERY_BROKER) and the S3
    # hand-off of step outputs come from the environment and .env.local, as for the launcher's executor.
    # One -Q with a comma list; %H is systemd's host name, so each node's worker is nexa@<host>.
    printf '%s' "$REPO/.venv/bin/celery -A nexa_dagster.execution.worker worker -Q $QUEUES -n nexa@%H -l INFO"
  else
    printf '%s' "$REPO/.venv/bin/dagster code-server start -h 0.0.0.0 -p $CODE_SERVER_PORT -m nexa_dagster.definitions"
  fi
  return 0
}

unit_file() {
  local what="Celery worker (queues $QUEUES)"
  [[ "$WORKER" == code-server ]] && what="code server (port $CODE_SERVER_PORT)"
  cat <<EOF
# Written by deploy/bootstrap.sh.
[Unit]
Description=NexaCompute $what
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=$SERVICE_USER
# .env and .env.local here hold the credentials (nexa_core/common/envfiles.py); nexa.env wins over them.
WorkingDirectory=$REPO
EnvironmentFile=/etc/nexa/nexa.env
ExecStart=$(worker_command)
# Stop every process of the worker, not only the first one.
KillMode=control-group
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
EOF
}

UNIT=nexa-worker.service
step_worker() {
  if [[ "$WORKER" == none ]]; then ok "no worker on this node (--worker none)"; return; fi
  put_file "/etc/systemd/system/$UNIT" 644 "$(unit_file)
"
  if ! on_system; then skip "systemctl enable --now $UNIT" "scratch root"; return; fi
  if ! command -v systemctl >/dev/null 2>&1 || [[ ! -d /run/systemd/system ]]; then
    local cmd
    cmd="$(worker_command)"
    skip "systemctl enable --now $UNIT" "systemd is not running here: start ${cmd//%H/$(hostname)} by hand"; return
  fi
  [[ $UNIT_CHANGED -eq 1 ]] && act "systemctl daemon-reload" systemctl daemon-reload
  if systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then ok "$UNIT enabled"
  else act "systemctl enable $UNIT" systemctl enable --quiet "$UNIT"; fi
  if ! systemctl is-active --quiet "$UNIT"; then act "systemctl start $UNIT" systemctl start "$UNIT"
  elif [[ $UNIT_CHANGED -eq 1 ]]; then act "systemctl restart $UNIT (its unit changed)" systemctl restart "$UNIT"
  else ok "$UNIT running"; fi
}

echo "bootstrap: repo $REPO, root ${ROOT:-/}, worker $WORKER$([[ $DRY -eq 1 ]] && echo ', dry run')"
step_packages
step_awscli
step_project
step_nvml
step_dirs
put_file /etc/nexa/nexa.env 644 "$(env_file)
"
put_file /etc/profile.d/nexa.sh 644 "$(profile_file)
"
step_worker

if [[ $CHANGES -eq 0 ]]; then echo "bootstrap: nothing to change"
elif [[ $DRY -eq 1 ]]; then echo "bootstrap: would make $CHANGES change(s)"
else echo "bootstrap: made $CHANGES change(s)"; fi
