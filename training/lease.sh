#!/bin/bash
# One GPU lease, planned to fit the device tool's 15 minutes (see training/README.md):
#   1. a probe: PROBE_STEPS steps of the plain and of the compiled channels-last training
#      step, so the run uses the faster (neither was timed on a GPU before 2026-12-06);
#   2. the run itself, from the committed checkpoint, capped by the clock, annealed by it;
#   3. what comes back under $OUT: the run's log, report, best export (and its checkpoint
#      when the export failed), and both logs.
# Usage on the device machine, from the repository root, with Kodak24 carried in
# .train_data/kodak24:  MIN=6.5 bash training/lease.sh
# Variables: MIN (run minutes), INIT (weights to start from), LAYOUT, BLUR (max px), LR,
# DEVICE (cuda; cpu for a dry run), STEPS, BATCH, PATCH, WORKERS, PROBE_STEPS.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT to the folder that comes back}
MIN=${MIN:-6.5}
INIT=${INIT:-training/checkpoints/clearnet-m-wip.pt}
LAYOUT=${LAYOUT:---enc 1,1,1,1 --middle 4 --dec 1,1,1,1}
BLUR=${BLUR:-21}
LR=${LR:-5e-4}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-60000}
BATCH=${BATCH:-64}
PATCH=${PATCH:-160}
WORKERS=${WORKERS:-14}
PROBE_STEPS=${PROBE_STEPS:-150}
KODAK=${KODAK:-.train_data/kodak24}
AMP=""; [ "$DEVICE" = cuda ] && AMP="--amp"
base="--device $DEVICE $AMP --batch $BATCH --patch $PATCH --kodak $KODAK $LAYOUT"

# the probe: the plain step against the compiled channels-last one; the winner is the one
# that would make more steps in the run's minutes, compilation included
best_flag=""; best_steps=0
for flag in "" "--compile --channels-last"; do
    rm -rf /tmp/probe
    if ! python3 -m training.train $base $flag --workers 4 --seed 0 --steps "$PROBE_STEPS" \
        --eval-every "$PROBE_STEPS" --pool 1000 --pool-start 200 --chunk 100 --minutes 4 \
        --out /tmp/probe > /tmp/probe.log 2>&1; then
        echo "probe '$flag' failed:" | tee -a "$OUT/probe.log"; tail -n 5 /tmp/probe.log | tee -a "$OUT/probe.log"
        continue
    fi
    # the steps it would make in the run's minutes, then its pace in words
    probe=$(python3 -c "
import json; s = json.load(open('/tmp/probe/summary.json'))
steps = int(max(0.0, $MIN * 60 - s['seconds_to_step_20']) / s['seconds_per_step'])
print(steps, f\"{s['seconds_to_step_20']:.1f} s to step 20, {s['seconds_per_step'] * 1000:.1f} ms a step\")")
    steps=${probe%% *}
    echo "probe '$flag': ${probe#* }, ~$steps steps in $MIN min" | tee -a "$OUT/probe.log"
    if [ "$steps" -gt "$best_steps" ]; then best_steps=$steps; best_flag=$flag; fi
done
echo "using '$best_flag'" | tee -a "$OUT/probe.log"

init=""; [ -f "$INIT" ] && init="--init $INIT"
python3 -m training.train $base $best_flag $init --workers "$WORKERS" --seed "${SEED:-9}" \
    --steps "$STEPS" --minutes "$MIN" --lr "$LR" --blur-max-px "$BLUR" --pool 120000 \
    --pool-start 6000 --chunk 200 --grow-every 100 --eval-every 1000 --anneal-by-clock \
    --out /tmp/lease > "$OUT/train.log" 2>&1
mkdir -p "$OUT/run"
cp /tmp/lease/log.jsonl /tmp/lease/report.png /tmp/lease/summary.json "$OUT/run/" 2>/dev/null
cp /tmp/lease/best.pt "$OUT/run/" 2>/dev/null
cp /tmp/lease/best.onnx "$OUT/run/" 2>/dev/null
tail -n 3 "$OUT/train.log"
