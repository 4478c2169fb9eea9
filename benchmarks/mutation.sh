#!/usr/bin/env bash
# Mutation testing of the math modules (affine, activations, softmax, losses, network,
# gradcheck) with mutmut; prints a table per module and the mutation score.
#
#   benchmarks/mutation.sh                 # every mutant (about 11 minutes on 2 cores)
#   benchmarks/mutation.sh 'typedbackprop.nn.losses.*'   # some mutants (mutmut run arguments)
#
# It stages a copy of the repository in mutants/stage in which mutmut can mutate the @checked
# functions (see benchmarks/mutation.py), runs `mutmut run` there and scores the result against
# the equivalent mutants listed in docs/mutation-testing.md. Results are cached in the stage: a
# second run re-tests only the mutants of functions (or tests) that changed.
#
# Environment: MUTATION_JOBS   workers (default 2)
#              MUTATION_STAGE  staging directory (default mutants/stage)
#              MUTATION_DESELECT  space-separated pytest node ids to leave out, for a test that
#                                 fails on the unmutated code (mutmut needs a green suite)
# Exit status: 0 if every mutant is killed or listed as equivalent, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage="${MUTATION_STAGE:-$root/mutants/stage}"
python benchmarks/mutation.py stage "$stage"
cd "$stage"
started=$SECONDS
status=0
mutmut run --max-children "${MUTATION_JOBS:-2}" "$@" >mutmut-run.log 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    tr '\r' '\n' <mutmut-run.log | grep -v -E '^. (Generating|Running|Listing)|^. [0-9]+/[0-9]+ ' | tail -40
    echo "mutmut run failed (exit $status); full log: $stage/mutmut-run.log" >&2
    exit "$status"
fi
tr '\r' '\n' <mutmut-run.log | grep -E 'mutations/second' | tail -1 || true
echo "mutmut run took $((SECONDS - started)) s with ${MUTATION_JOBS:-2} workers"
python "$root/benchmarks/mutation.py" score "$stage"
