#!/usr/bin/env bash
# Train and score every row of the paper's Tables 1-4 (conf/ablation/*.yaml; the table2_cmcd* and
# table2_phonmatchnet* rows are the baseline detectors of Table 2's bottom and Table 4) on the
# embedded mini corpora with the same data, epochs and seed, then write the tables into
# RESULTS.md: Tables 1-3 from the first words test set, Table 4 from the first pairs test set.
# Needs stages 0-5 (bash run.sh --stop-stage 5). Finished rows are skipped, so a re-run resumes.
#   local/run_ablation.sh [--epochs 1] [--seeds "1"] [--key-seeds "1 2"] [--rows "..."] [--jobs 2]
# --jobs N trains N rows at once, each on cores/N threads. On 2 CPU cores two one-thread runs
# together train at about the rate of one two-thread run (185 against 180 utterances/s), and
# the single-threaded dev AP, export and scoring of one row overlap the other's training.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ./path.sh
epochs=1                              # 23 runs, two at a time: about 2 h on 2 cores
seeds="1"
key_seeds="1 2"                       # the key rows get a second seed, to show the spread
key_rows="table1_rp table2_adml table3_sphereface2 table2_cmcd table2_cmcd_mal table2_phonmatchnet table2_phonmatchnet_mal"
rows=                                 # empty: every yaml in conf/ablation
nproc_per_node=1
jobs=2                                 # rows trained at once (see above)
train_opts=                            # extra dotted overrides for every row, e.g. "batch.keywords=50"
# The data, as run.sh names it; Tables 1-3 report AP on the first words test set, Table 4 EER
# and AUC on the first pairs (LibriPhrase-like) test set.
train_set=king_asr_066_train
dev_set=king_asr_066_dev
test_sets="wsj_test:words libriphrase_test:pairs"
help_message="Usage: $0 [--epochs N] [--seeds S] [--key-seeds S] [--rows ROWS] [--nproc-per-node N] [--jobs N] [--train-opts \"k=v ...\"] [--train-set S] [--dev-set S] [--test-sets \"S:P ...\"]"
. utils/parse_options.sh
[ -z "$rows" ] && rows=$(for f in conf/ablation/*.yaml; do basename "$f" .yaml; done)
for t in data/.done/stage_5.done; do
  [ -f $t ] || { echo "$0: run stages 0-5 first (bash run.sh --stop-stage 5)" >&2; exit 1; }
done

cores=${PYADML_NPROC:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
per_job=$(( cores / jobs >= 1 ? cores / jobs : 1 ))

run_row() {  # row seed: train, export, score one row into exp/ablation/<row>/seed<seed>
  local row=$1 seed=$2 exp=exp/ablation/$1/seed$2
  echo "== $row seed $seed  [$(date)]"
  mkdir -p $exp/log
  PYADML_NPROC=$per_job steps/train.sh --nproc-per-node $nproc_per_node --resume true \
    conf/ablation/$row.yaml $exp epochs=$epochs seed=$seed average=$epochs \
    data.train=data/fbank/${train_set}_aug.jsonl.gz data.dev=data/fbank/$dev_set.jsonl.gz \
    data.dev_trials=data/trials/$dev_set.tsv data.lang=data/lang data.fbank_config=conf/fbank.yaml \
    $train_opts > $exp/log/train.out 2>&1 \
    || { echo "$0: training failed, see $exp/log/train.out" >&2; return 1; }
  python -m pyadml.bin.export_model --exp-dir $exp > $exp/log/export.out 2>&1 \
    || { echo "$0: export failed, see $exp/log/export.out" >&2; return 1; }
  python -m pyadml.bin.score --exp-dir $exp --fbank-dir data/fbank --trials-dir data/trials \
    $test_sets > $exp/log/score.out 2>&1 \
    || { echo "$0: scoring failed, see $exp/log/score.out" >&2; return 1; }
  echo "== $row seed $seed done  [$(date)]"
}

start=$SECONDS
failed=0
running=0
for row in $rows; do
  s=$seeds
  [[ " $key_rows " == *" $row "* ]] && s=$key_seeds
  for seed in $s; do
    if [ -f exp/ablation/$row/seed$seed/results/metrics.json ]; then
      echo "$row seed $seed: done"; continue
    fi
    if [ $running -ge $jobs ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    [ $failed -eq 0 ] || break 2
    run_row $row $seed &
    running=$((running + 1))
  done
done
while [ $running -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
[ $failed -eq 0 ] || { echo "$0: a row failed; finished rows are kept, re-run to resume" >&2; exit 1; }
minutes=$(( (SECONDS - start) / 60 ))
first_of() {  # the first of $test_sets whose protocol is $1
  for s in $test_sets; do if [ "${s#*:}" = "$1" ]; then echo "${s%%:*}"; return; fi; done
}
first_words=$(first_of words)
[ -n "$first_words" ] || { echo "$0: --test-sets names no words set to report" >&2; exit 1; }
first_pairs=$(first_of pairs)
python -m pyadml.bin.ablation_report --exp-dir exp/ablation --test-set "$first_words" \
  ${first_pairs:+--pairs-set "$first_pairs"} --results-md RESULTS.md \
  --note "Embedded mini corpora, $epochs epoch(s) per row (conf/train_rp_mini.yaml model), seeds $seeds (key rows: $key_seeds); this run took $minutes min with --jobs $jobs on $cores cores."
