#!/usr/bin/env bash
# Keyword detection over a Kaldi data directory (wav.scp), N jobs through $cmd.
#   steps/detect.sh [--nj 4] [--cmd utils/run_local.sh] [--keywords "computer,smart mirror"] \
#       [--keywords-file FILE] [--threshold T] [--format tsv|ctm] [--backend torch|onnx] \
#       [--scan-step 1] [--num-threads 1] \
#       <model> <data-dir> <out-dir>
# --threshold: empty (the default) leaves it to pyadml.bin.detect: 0.57, about 1 false alarm per
# hour with its TTS enrolment; a number, or per keyword 'computer=0.6,alexa=0.5'.
# <model> is final.pt or a pyadml.bin.export_onnx directory. Writes <out-dir>/detections.<format>
# (written last, atomically) and logs in <out-dir>/log/detect.JOB.log. A failed job leaves no
# detections file.
set -euo pipefail
nj=4
cmd=utils/run_local.sh
keywords=
keywords_file=
threshold=
format=tsv
backend=
num_threads=1
scan_step=1
help_message="Usage: $0 [--nj N] [--cmd CMD] [--keywords 'a,b' | --keywords-file F] [--threshold T] [--format tsv|ctm] [--backend torch|onnx] [--scan-step N] [--num-threads N] <model> <data-dir> <out-dir>"
. utils/parse_options.sh
[ -n "$cmd" ] || { echo "$0: --cmd is empty: source the recipe's cmd.sh first (. ./cmd.sh sets \$cmd), or leave --cmd out to run the jobs on this machine" >&2; exit 1; }
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
model=$1
data=$2
dir=$3
[ -e "$model" ] || { echo "$0: no such model: $model" >&2; exit 1; }
[ -f "$data/wav.scp" ] || { echo "$0: no wav.scp in $data" >&2; exit 1; }
[ -n "$keywords$keywords_file" ] || { echo "$0: give --keywords or --keywords-file" >&2; exit 1; }
[ -z "$keywords_file" ] || [ -f "$keywords_file" ] \
  || { echo "$0: no such keywords file: $keywords_file" >&2; exit 1; }
case $format in tsv|ctm) ;; *) echo "$0: --format must be tsv or ctm, got '$format'" >&2; exit 1;; esac

mkdir -p "$dir/split" "$dir/log"
rm -f "$dir/detections.$format" "$dir"/split/*
n=$(grep -c . "$data/wav.scp")
[ "$n" -gt 0 ] || { echo "$0: $data/wav.scp is empty" >&2; exit 1; }
[ "$nj" -le "$n" ] || nj=$n
# Contiguous parts, so that the merged output keeps wav.scp's order.
awk -v nj="$nj" -v n="$n" -v dir="$dir/split" 'NF { i++; part = int((i - 1) * nj / n) + 1;
  print > (dir "/wav." part ".scp") }' "$data/wav.scp"

opts=(--model "$model" --format "$format" --num-threads "$num_threads" --scan-step "$scan_step")
[ -z "$keywords" ] || opts+=(--keywords "$keywords")
[ -z "$keywords_file" ] || opts+=(--keywords-file "$keywords_file")
[ -z "$threshold" ] || opts+=(--threshold "$threshold")
[ -z "$backend" ] || opts+=(--backend "$backend")
$cmd JOB=1:"$nj" "$dir/log/detect.JOB.log" \
  python -m pyadml.bin.detect "${opts[@]}" --wav-scp "$dir/split/wav.JOB.scp" \
    --out "$dir/split/detections.JOB.$format"

tmp="$dir/.detections.$format.tmp.$$"
trap 'rm -f "$tmp"' EXIT
{
  [ "$format" != tsv ] || head -n 1 "$dir/split/detections.1.$format"
  for i in $(seq 1 "$nj"); do
    if [ "$format" = tsv ]; then tail -n +2 "$dir/split/detections.$i.$format"; else cat "$dir/split/detections.$i.$format"; fi
  done
} >"$tmp"
mv -f "$tmp" "$dir/detections.$format"
count=$(grep -c . "$dir/detections.$format" || true)
[ "$format" != tsv ] || count=$((count - 1))
echo "$0: $count detection(s) in $n recording(s) -> $dir/detections.$format"
