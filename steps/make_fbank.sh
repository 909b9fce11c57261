#!/usr/bin/env bash
# 40-dim fbank for a cut manifest: split into N parts, compute each as a $cmd job, merge.
#   steps/make_fbank.sh [--nj 4] [--cmd utils/run_local.sh] [--fbank-config conf/fbank.yaml] \
#       <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>
#
# Re-runs do only what is missing, and a kill at any point leaves nothing that looks done:
#   - The signature is a sha256 over the bytes of <cuts.jsonl.gz> and of the fbank config.
#     If <out> exists and <out>.sig holds the same signature: "<name>: complete, skipping".
#   - Parts live in <fbank-dir>/split_<name>; its .sig holds a tag (signature + --nj).  Another
#     tag means other inputs: the old parts are removed and the manifest is split again.
#   - Job JOB writes its archive <fbank-dir>/<name>_feats.<tag>.JOB.lca under a temporary name,
#     renames it into place, then writes its part manifest split_<name>/feats.JOB.jsonl.gz last
#     (atomically).  A part manifest that exists is a finished job: after a kill only the missing
#     jobs run.
#   - The tag in the archive names means a run with other inputs never writes over the archives
#     that an existing <out> points to; those are deleted only after the new <out> replaced it.
#   - <out> is written atomically, then <out>.sig.
set -euo pipefail
nj=4
cmd=utils/run_local.sh
fbank_config=
help_message="Usage: $0 [--nj N] [--cmd CMD] [--fbank-config FILE] <cuts.jsonl.gz> <fbank-dir> <out-cuts.jsonl.gz>"
. utils/parse_options.sh
. utils/queue_common.sh   # queue_progress: lines on run_stage's console
[ $# -eq 3 ] || { printf "%b\n" "$help_message" >&2; exit 1; }
cuts=$1
dir=$2
out=$3
[ -f "$cuts" ] || { echo "$0: no such cut manifest: $cuts" >&2; exit 1; }
[ -z "$fbank_config" ] || [ -f "$fbank_config" ] \
  || { echo "$0: no such fbank config: $fbank_config" >&2; exit 1; }
name=$(basename "$cuts" .jsonl.gz)
split=$dir/split_$name
desc=${PYADML_PROGRESS_DESC:-fbank $name}

sha() { sha256sum | cut -d' ' -f1; }
sig=$( {
  echo "cuts $(sha <"$cuts")"
  [ -z "$fbank_config" ] || echo "fbank-config $(sha <"$fbank_config")"
} | sha)
if [ -f "$out" ] && [ "$(cat "$out.sig" 2>/dev/null)" = "$sig" ]; then
  echo "$name: complete, skipping ($out)"
  queue_progress "   $desc: complete, skipping" final
  exit 0
fi
# <out> is about to be replaced: its old signature must not outlive it (a kill after the merge
# would otherwise pair a new <out> with the old signature).
rm -f "$out.sig"

mkdir -p "$split" "$dir/log"
# Parts take every nj-th cut: stage 3 writes clean cuts first and augmented ones after, so
# contiguous parts were uneven (48 s against 76 s for two). The tag names the scheme, so a
# split of the older contiguous kind is made again, never merged the wrong way.
tag=$(echo "$sig nj=$nj interleave" | sha | cut -c1-12)
if [ "$(cat "$split/.sig" 2>/dev/null)" != "$tag" ] || [ ! -f "$split/cuts.1.jsonl.gz" ]; then
  rm -f "$split/.sig" "$split"/cuts.*.jsonl.gz "$split"/feats.*.jsonl.gz
  python -m pyadml.bin.fbank split --interleave "$cuts" "$nj" "$split"
  echo "$tag" >"$split/.sig.tmp.$$"
  mv -f "$split/.sig.tmp.$$" "$split/.sig"   # last: only a complete split is reused
fi
n=$(ls "$split"/cuts.*.jsonl.gz | wc -l)   # fewer parts than --nj when there are few cuts

todo=()
for i in $(seq 1 "$n"); do
  [ -f "$split/feats.$i.jsonl.gz" ] || todo+=("$i")
done
if [ ${#todo[@]} -gt 0 ]; then
  echo "$name: computing part(s) ${todo[*]} of $n"
  rm -f "$dir/${name}_feats".*.tmp*.lca   # staged archives of killed jobs
  # Jobs first..last; those in between whose part exists return at once (--skip-existing).
  # $cmd reports "K/N jobs done" under this name when it runs more than one job.
  PYADML_PROGRESS_DESC=$desc \
  $cmd JOB="${todo[0]}":"${todo[${#todo[@]}-1]}" "$dir/log/fbank_$name.JOB.log" \
    python -m pyadml.bin.fbank compute --skip-existing ${fbank_config:+--config "$fbank_config"} \
      "$split/cuts.JOB.jsonl.gz" "$dir/${name}_feats.$tag.JOB" "$split/feats.JOB.jsonl.gz"
  [ "${#todo[@]}" -gt 1 ] || queue_progress "   $desc: 1/1 job done | elapsed $(queue_progress_clock)" final
else
  echo "$name: all $n parts computed before; merging"
  queue_progress "   $desc: all $n parts computed before; merging" final
fi

# The archives the current <out> points to: deleted once the new <out> no longer does.
archives() {
  [ -f "$1" ] || return 0
  { gzip -cd "$1" 2>/dev/null || true; } | { grep -o '"storage_path": "[^"]*"' || true; } \
    | cut -d'"' -f4 | sort -u
}
old=$(archives "$out")
parts=()
for i in $(seq 1 "$n"); do parts+=("$split/feats.$i.jsonl.gz"); done
python -m pyadml.bin.fbank merge --interleave "$out" "${parts[@]}"
echo "$sig" >"$out.sig.tmp.$$"
mv -f "$out.sig.tmp.$$" "$out.sig"
if [ -n "$old" ]; then
  # Only archives in this fbank dir: in a copied recipe (cp -r of egs/<corpus>) the old <out>
  # still points at the original's archives, which are not this run's to delete.
  here=$(cd "$dir" && pwd -P)
  comm -23 <(echo "$old") <(archives "$out") | while IFS= read -r f; do
    if [ "$(cd "$(dirname -- "$f")" 2>/dev/null && pwd -P)" = "$here" ]; then rm -f -- "$f"; fi
  done
fi
grep -h "real time" "$dir/log/fbank_$name".*.log || true
