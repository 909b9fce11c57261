#!/usr/bin/env bash
# Make a new recipe directory from an existing one: its run.sh, path.sh, cmd.sh, db.sh, conf/
# and local/ are copied (never data/, exp/ or RESULTS.md), and steps/ and utils/ are linked
# back to this toolkit. Then edit, in the new directory only:
#   db.sh                   the corpus paths (empty: the embedded stand-in of stage 0)
#   run.sh                  the set names at the top (train_set, dev_set, test_sets, ...)
#   local/prepare_manifests.sh   one "prepare" line per corpus (pyadml.bin.prepare_manifests); a Kaldi data
#                           dir + word CTM needs only "kaldi <dir> <out> --ctm F --name N --part P"
#   utils/make_recipe.sh [--from egs/wsj_librikws] <new-recipe-dir>
set -euo pipefail
# -P: run as a recipe's utils/make_recipe.sh (utils is a link), the toolkit is the link's target.
root=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
from=$root/egs/wsj_librikws
usage="Usage: $0 [--from egs/wsj_librikws] <new-recipe-dir>"
case ${1:-} in -h|--help) echo "$usage"; exit 0 ;; esac
if [ "${1:-}" = --from ]; then
  [ $# -ge 2 ] || { echo "$0: --from needs a recipe directory" >&2; exit 1; }
  from=$2
  shift 2
fi
[ $# -eq 1 ] || { echo "$usage" >&2; exit 1; }
dest=$1
case $dest in -*) echo "$0: unknown option '$dest'" >&2; echo "$usage" >&2; exit 1 ;; esac
for f in run.sh path.sh cmd.sh db.sh conf local; do
  [ -e "$from/$f" ] || { echo "$0: $from is not a recipe directory (no $f)" >&2; exit 1; }
done
if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2> /dev/null)" ]; then
  echo "$0: $dest exists and is not empty; choose a new directory" >&2
  exit 1
fi
# Build under a temporary name and rename last: a failed copy leaves no half recipe.
parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.make_recipe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -p "$from"/{run.sh,path.sh,cmd.sh,db.sh} "$tmp/"
cp -rp "$from/conf" "$from/local" "$tmp/"
# Relative links inside this toolkit (the tree can move), absolute ones elsewhere.
dest_abs=$(cd "$parent" && pwd)/$(basename "$dest")
case $dest_abs in
  "$root"/*) rel=$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$root" "$dest_abs")
             ln -s "$rel/steps" "$tmp/steps"; ln -s "$rel/utils" "$tmp/utils" ;;
  *) ln -s "$root/steps" "$tmp/steps"; ln -s "$root/utils" "$tmp/utils" ;;
esac
# mktemp -d makes the directory 0700: give it the mode mkdir would (a lab's recipe on a shared
# cluster is read by the group, as the toolkit's own files are).
chmod "$(printf '%o' $(( 0777 & ~$(umask) )))" "$tmp"
rmdir "$dest" 2> /dev/null || true
mv "$tmp" "$dest"
trap - EXIT
echo "$0: made $dest from $from; edit its db.sh, the set names at the top of run.sh and" \
  "local/prepare_manifests.sh, then: cd $dest && bash run.sh"
