#!/bin/sh
# cnf_compare.sh — one training iteration of torchdiffeq's examples/cnf.py model (planar
# CNF, width 64, hypernetwork hidden 32, two circles, batch 512, t in [0, 10], dopri5 at
# rtol = atol = 1e-5, exact trace, Adam 1e-3; torchdiffeq_cnf.py) against libnode's
# examples/cnf at the same sizes, back to back on this machine, one thread each, float64,
# both from their initial weights; adjoint, then backprop (cnf.py's default).  Prints ms
# per iteration, NFE per iteration and the ratio; repeats RUNS times.
# Run: sh bench/peers/cnf_compare.sh        (BUILD=build ITERS=5 RUNS=1 PYTHONPATH=/work/peers)
set -eu
build=${BUILD:-build}
iters=${ITERS:-5}
runs=${RUNS:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=1
r=1
while [ "$r" -le "$runs" ]; do
    for grad in adjoint backprop; do
        flag=""
        [ "$grad" = backprop ] && flag=--backprop
        # libnode: iters + 1 iterations, the mean over all (the first pays for the workspaces)
        "$build/cnf" --iters $((iters + 1)) $flag --test-size 512 --no-figures --out "$out" \
            "$@" 2>/dev/null | tail -n 1 > "$out/ours.json"
        ours=$(sed -n 's/.*"ms_per_iter": \([0-9.e+-]*\).*/\1/p' "$out/ours.json")
        onfe=$(sed -n 's/.*"nfe_forward": \([0-9.e+-]*\).*"nfe_backward": \([0-9.e+-]*\).*/\1 fwd \/ \2 bwd/p' "$out/ours.json")
        # torchdiffeq: 1 warm-up iteration, then the mean over iters
        line=$(PYTHONPATH=${PYTHONPATH:-/work/peers} /usr/bin/python3 \
            bench/peers/torchdiffeq_cnf.py --iters "$iters" $flag "$@" | grep '^ms/iter')
        theirs=$(echo "$line" | sed -n 's/^ms\/iter \([0-9.]*\).*/\1/p')
        tnfe=$(echo "$line" | sed -n 's/.*NFE fwd \([0-9.]*\)  NFE bwd \([0-9.]*\).*/\1 fwd \/ \2 bwd/p')
        ratio=$(awk -v a="$theirs" -v b="$ours" 'BEGIN { printf "%.1f", a / b }')
        echo "run $r $grad: libnode $ours ms/iter (NFE $onfe), torchdiffeq $theirs ms/iter (NFE $tnfe): ${ratio}x"
    done
    r=$((r + 1))
done
