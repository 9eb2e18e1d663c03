#!/bin/sh
# latent_compare.sh — one training iteration of the latent ODE, libnode (examples/latent_ode)
# against torchdiffeq (torchdiffeq_latent_ode.py), back to back on this machine: the same
# sizes (latent 4, RNN 25, f 4-20-20-4, g 4-20-2), batch, data (the spirals latent_ode
# writes with --write-data, n = 30 of 100), solver and tolerances, one thread, float64,
# both from their initial weights; adjoint, then backprop.  Extra arguments go to both
# (e.g. --rtol 1e-7 --atol 1e-9).  Prints ms per iteration and the ratio.
# Run: sh bench/peers/latent_compare.sh        (BUILD=build ITERS=20 B=50 PYTHONPATH=/work/peers)
set -eu
build=${BUILD:-build}
iters=${ITERS:-20}
B=${B:-50}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for grad in adjoint backprop; do
    flag=""
    [ "$grad" = backprop ] && flag=--backprop
    # libnode: iters + 2 iterations, the mean over all (the first pays for the workspaces)
    "$build/latent_ode" --model latent-ode --n-obs 30 --iters $((iters + 2)) --batch-size "$B" \
        $flag --write-data --out "$out" "$@" 2>/dev/null | tail -n 1 > "$out/ours.json"
    ours=$(sed -n 's/.*"ms_per_iter": \([0-9.e+-]*\).*/\1/p' "$out/ours.json")
    # torchdiffeq: 2 warm-up iterations, then the mean over iters
    theirs=$(PYTHONPATH=${PYTHONPATH:-/work/peers} /usr/bin/python3 \
        bench/peers/torchdiffeq_latent_ode.py --train "$out/spirals_n30_train.csv" \
        --batch-size "$B" --iters "$iters" $flag "$@" | sed -n 's/^ms\/iter \([0-9.]*\).*/\1/p')
    ratio=$(awk -v a="$theirs" -v b="$ours" 'BEGIN { printf "%.0f", a / b }')
    echo "$grad: libnode $ours ms/iter, torchdiffeq $theirs ms/iter: ${ratio}x"
done
