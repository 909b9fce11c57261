# steps/make_fbank_common.sh -- what steps/make_fbank.sh (one set) and steps/make_fbank_sets.sh
# (several) share; sourced by both, not a step of its own.  The caller sets nj, cmd and
# fbank_config (its options) and calls
#   fbank_sets <fbank-dir> <log-name> <cuts> <out> <desc> [<cuts> <out> <desc> ...]
# Each set that needs work is prepared (signature, split, the parts to compute), then ONE
# `$cmd JOB=lo:hi <fbank-dir>/log/<log-name>.JOB.log` array runs: job JOB computes part JOB of
# every such set in one process (`pyadml.bin.fbank compute-many`), because loading torch and
# lhotse takes ~2.5 s, which a process per set and part paid again.  Then each set is merged.
# lo..hi spans the missing parts of all the sets; a job with nothing left to do for a set skips
# it (its part exists, or the set has fewer parts), and one with nothing at all never loads torch.
# <desc> names the set on the stage's console (utils/queue_common.sh, queue_progress).
#
# Per set, re-runs do only what is missing, and a kill at any point leaves nothing that looks done:
#   - The signature is a sha256 over the bytes of <cuts> and of the fbank config.  If <out>
#     exists and <out>.sig holds the same signature: "<name>: complete, skipping".
#   - Parts live in <fbank-dir>/split_<name> (<name>: <cuts> without .jsonl.gz); its .sig holds a
#     tag (signature + --nj).  Another tag means other inputs: the old parts are removed and the
#     manifest is split again.
#   - Job JOB writes the set's archive <fbank-dir>/<name>_feats.<tag>.JOB.lca under a temporary
#     name, renames it into place, then writes its part manifest split_<name>/feats.JOB.jsonl.gz
#     last (atomically).  A part manifest that exists is a finished part: after a kill only the
#     missing parts are computed, and a job skips the parts of its sets that exist.
#   - The tag in the archive names means a run with other inputs never writes over the archives
#     that an existing <out> points to; those are deleted only after the new <out> replaced it.
#   - <out> is written atomically, then <out>.sig.  A set is merged when all its parts exist, even
#     if a job of another set failed; the step then fails.
# Both callers take --cmd; an empty one (a shell that did not source cmd.sh) would fail only
# after the split, as "JOB=1:N: command not found". Here rather than in make_fbank_sets.sh,
# whose text is stage 4's key.
[ -n "$cmd" ] || { echo "$0: --cmd is empty: source the recipe's cmd.sh first (. ./cmd.sh sets \$cmd), or leave --cmd out to run the jobs on this machine" >&2; exit 1; }
. utils/queue_common.sh   # queue_progress: lines on run_stage's console

sha() { sha256sum | cut -d' ' -f1; }

# fbank_archives MANIFEST: the archives it points to (none when it does not exist).
fbank_archives() {
  [ -f "$1" ] || return 0
  { gzip -cd "$1" 2>/dev/null || true; } | { grep -o '"storage_path": "[^"]*"' || true; } \
    | cut -d'"' -f4 | sort -u
}

# fbank_prepare DIR CUTS OUT DESC: a set that is not complete goes into the fb_* arrays (its
# compute-many arguments into fb_args when a part is missing, its job range into fb_lo..fb_hi).
fbank_prepare() {
  local dir=$1 cuts=$2 out=$3 desc=$4 name split sig tag n i todo=()
  name=$(basename "$cuts" .jsonl.gz)
  split=$dir/split_$name
  sig=$( {
    echo "cuts $(sha <"$cuts")"
    [ -z "$fbank_config" ] || echo "fbank-config $(sha <"$fbank_config")"
  } | sha)
  if [ -f "$out" ] && [ "$(cat "$out.sig" 2>/dev/null)" = "$sig" ]; then
    echo "$name: complete, skipping ($out)"
    queue_progress "   $desc: complete, skipping" final
    return 0
  fi
  # <out> is about to be replaced: its old signature must not outlive it (a kill after the merge
  # would otherwise pair a new <out> with the old signature).
  rm -f "$out.sig"
  mkdir -p "$split" "$dir/log"
  # Parts take every nj-th run of one recording's cuts: stage 3 writes clean cuts first and
  # augmented ones after, so contiguous parts were uneven (48 s against 76 s for two), and a
  # recording read through a command is then decoded by one job. The tag names the scheme, so
  # a split of an older kind is made again, never merged the wrong way.
  tag=$(echo "$sig nj=$nj interleave-recordings" | sha | cut -c1-12)
  if [ "$(cat "$split/.sig" 2>/dev/null)" != "$tag" ] || [ ! -f "$split/cuts.1.jsonl.gz" ]; then
    rm -f "$split/.sig" "$split"/cuts.*.jsonl.gz "$split"/feats.*.jsonl.gz "$split/runs.txt.gz"
    python -m pyadml.bin.fbank split --interleave "$cuts" "$nj" "$split"
    echo "$tag" >"$split/.sig.tmp.$$"
    mv -f "$split/.sig.tmp.$$" "$split/.sig"   # last: only a complete split is reused
  fi
  n=$(ls "$split"/cuts.*.jsonl.gz | wc -l)   # fewer parts than --nj when there are few cuts
  for i in $(seq 1 "$n"); do
    [ -f "$split/feats.$i.jsonl.gz" ] || todo+=("$i")
  done
  fb_names+=("$name") fb_outs+=("$out") fb_sigs+=("$sig") fb_splits+=("$split") fb_ns+=("$n")
  if [ ${#todo[@]} -eq 0 ]; then
    echo "$name: all $n parts computed before; merging"
    queue_progress "   $desc: all $n parts computed before; merging" final
    return 0
  fi
  echo "$name: computing part(s) ${todo[*]} of $n"
  rm -f "$dir/${name}_feats".*.tmp*.lca   # staged archives of killed jobs
  fb_descs+=("$desc")
  fb_args+=(--set "$name" "$n" "$split/cuts.JOB.jsonl.gz" "$dir/${name}_feats.$tag.JOB"
            "$split/feats.JOB.jsonl.gz")
  if [ -z "$fb_lo" ] || [ "${todo[0]}" -lt "$fb_lo" ]; then fb_lo=${todo[0]}; fi
  if [ -z "$fb_hi" ] || [ "${todo[-1]}" -gt "$fb_hi" ]; then fb_hi=${todo[-1]}; fi
}

# fbank_merge DIR K: merges set K of the fb_* arrays, writes its signature, and deletes the
# archives that only the old <out> pointed to.
fbank_merge() {
  local dir=$1 k=$2 out=${fb_outs[$2]} old here i parts=()
  old=$(fbank_archives "$out")
  for i in $(seq 1 "${fb_ns[k]}"); do parts+=("${fb_splits[k]}/feats.$i.jsonl.gz"); done
  python -m pyadml.bin.fbank merge --interleave --runs "${fb_splits[k]}/runs.txt.gz" "$out" "${parts[@]}"
  echo "${fb_sigs[k]}" >"$out.sig.tmp.$$"
  mv -f "$out.sig.tmp.$$" "$out.sig"
  [ -n "$old" ] || return 0
  # Only archives in this fbank dir: in a copied recipe (cp -r of egs/<corpus>) the old <out>
  # still points at the original's archives, which are not this run's to delete.
  here=$(cd "$dir" && pwd -P)
  comm -23 <(echo "$old") <(fbank_archives "$out") | while IFS= read -r f; do
    if [ "$(cd "$(dirname -- "$f")" 2>/dev/null && pwd -P)" = "$here" ]; then rm -f -- "$f"; fi
  done
}

# fbank_sets: see the top of this file.
fbank_sets() {
  local dir=$1 log=$2 k i name desc rc=0 missing failed=()
  local -A seen=()
  shift 2
  [ -z "$fbank_config" ] || [ -f "$fbank_config" ] \
    || { echo "$0: no such fbank config: $fbank_config" >&2; exit 1; }
  for (( k = 1; k <= $#; k += 3 )); do   # every input checked before anything is written
    name=$(basename "${!k}" .jsonl.gz)
    [ -f "${!k}" ] || { echo "$0: set $name: no such cut manifest: ${!k}" >&2; exit 1; }
    [ -z "${seen[$name]:-}" ] || { echo "$0: set $name given twice (${seen[$name]}, ${!k}):" \
      "its parts would share $dir/split_$name" >&2; exit 1; }
    seen[$name]=${!k}
  done
  fb_names=() fb_outs=() fb_sigs=() fb_splits=() fb_ns=() fb_descs=() fb_args=() fb_lo= fb_hi=
  while [ $# -gt 0 ]; do
    fbank_prepare "$dir" "$1" "$2" "$3"
    shift 3
  done
  if [ ${#fb_descs[@]} -gt 0 ]; then
    # $cmd reports "K/N jobs done" under this name when it runs more than one job.
    desc=${fb_descs[0]}
    [ ${#fb_descs[@]} -eq 1 ] || desc="fbank ${#fb_descs[@]} sets"
    PYADML_PROGRESS_DESC=$desc \
    $cmd JOB="$fb_lo:$fb_hi" "$dir/log/$log.JOB.log" \
      python -m pyadml.bin.fbank compute-many ${fbank_config:+--config "$fbank_config"} \
        --job JOB "${fb_args[@]}" || rc=$?
    if [ "$rc" -eq 0 ] && [ "$fb_lo" -eq "$fb_hi" ]; then
      queue_progress "   $desc: 1/1 job done | elapsed $(queue_progress_clock)" final
    fi
  fi
  for k in "${!fb_names[@]}"; do
    missing=()
    for i in $(seq 1 "${fb_ns[k]}"); do
      [ -f "${fb_splits[k]}/feats.$i.jsonl.gz" ] || missing+=("$i")
    done
    if [ ${#missing[@]} -eq 0 ]; then
      fbank_merge "$dir" "$k"   # not in a condition: set -e holds inside
    else
      echo "${fb_names[k]}: part(s) ${missing[*]} of ${fb_ns[k]} not computed; not merged" >&2
      failed+=("${fb_names[k]}")
    fi
  done
  # The speeds only when every job succeeded: after a failure, $cmd's report of the failed job
  # (its log and last lines) must stay within the lines that run_stage shows.
  if [ ${#fb_descs[@]} -gt 0 ] && [ ${#failed[@]} -eq 0 ] && [ "$rc" -eq 0 ]; then
    for i in $(seq "$fb_lo" "$fb_hi"); do
      grep -h "real time" "$dir/log/$log.$i.log" 2>/dev/null || true
    done
  fi
  if [ ${#failed[@]} -gt 0 ] || [ "$rc" -ne 0 ]; then
    echo "$0: fbank failed${failed[*]:+ for ${failed[*]}}; the jobs' logs: $dir/log/$log.*.log" >&2
    return 1
  fi
}
