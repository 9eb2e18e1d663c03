#!/bin/sh
# odenet_compare.sh — one training epoch of the ODE-Net classifier, libnode
# (examples/odenet) against torchdiffeq (torchdiffeq_odenet.py, odenet_mnist.py's model),
# back to back on this machine: the same Fashion-MNIST images (the first N of the
# training set, full batches of B), width, tolerance, threads, SGD and random crops.
# torchdiffeq in float32 (as odenet_mnist.py runs) and in float64 (libnode's arithmetic).
# Prints seconds per epoch (training only) and the ratio torchdiffeq / libnode; for
# torchdiffeq, PEER_BATCHES=k times k batches and extrapolates to the epoch (said so).
# Run: sh bench/peers/odenet_compare.sh        (BUILD=build W=32 N=1280 B=128 THREADS=1
#      NETWORK=odenet PEER_BATCHES=0 PYTHONPATH=/work/peers; extra arguments go to both,
#      e.g. --tol 1e-4)
set -eu
build=${BUILD:-build}
W=${W:-32}
N=${N:-1280}
B=${B:-128}
T=${THREADS:-1}
net=${NETWORK:-odenet}
k=${PEER_BATCHES:-0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
num() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2"; }

"$build/odenet" --network "$net" --width "$W" --train-limit "$N" --test-limit "$B" \
    --batch-size "$B" --epochs 1 --threads "$T" --fig3-batches 0 --out "$out" "$@" \
    2>/dev/null | tail -n 1 > "$out/ours.json"
ours=$(num seconds_per_epoch "$out/ours.json")
echo "libnode $net: width $W, $N images, batch $B, $T threads: $ours s/epoch" \
     "(NFE-F $(num nfe_forward "$out/ours.json"), NFE-B $(num nfe_backward "$out/ours.json"))"
for dtype in float32 float64; do
    PYTHONPATH=${PYTHONPATH:-/work/peers} /usr/bin/python3 bench/peers/torchdiffeq_odenet.py \
        --network "$net" --width "$W" --train-limit "$N" --batch-size "$B" --threads "$T" \
        --batches "$k" --dtype "$dtype" "$@" | tail -n 1 > "$out/theirs.json"
    theirs=$(num seconds_per_epoch "$out/theirs.json")
    ext=$(grep -q '"extrapolated": true' "$out/theirs.json" && echo ", extrapolated" || true)
    echo "torchdiffeq $net $dtype: $theirs s/epoch$ext (NFE-F $(num nfe_forward "$out/theirs.json")," \
         "NFE-B $(num nfe_backward "$out/theirs.json")):" \
         "$(awk -v a="$theirs" -v b="$ours" 'BEGIN { printf "%.2f", a / b }')x libnode's time"
done
