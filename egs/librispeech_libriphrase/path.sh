# This recipe's environment: the toolkit's shared one, found through the utils link so that
# a copy of this directory elsewhere (with steps and utils linked) still works.
. "$(cd -P "$(dirname "${BASH_SOURCE[0]}")/utils/.." && pwd)/path.sh"
