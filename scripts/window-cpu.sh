#!/usr/bin/env bash
# The station window's frames per second and CPU use under Xvfb with Mesa's software
# GL (the GPU's work done on the CPU, as on a panel PC without a GPU), in the states
# that need no operator input: idle on the simulated pen (no session), a paused
# replay and a playing one. The frames come from the window's own counter
# (PUNCTUM_LOG=punctum::frames=info), the CPU from /proc/PID/stat.
#
#   scripts/window-cpu.sh [SECONDS]     (needs xvfb, xdotool; a release build)
set -euo pipefail
secs=${1:-30}
bin="$(dirname "$0")/../target/release/punctum"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export HOME="$work/home" DISPLAY=:47
mkdir -p "$HOME"
Xvfb :47 -screen 0 1280x800x24 >/dev/null 2>&1 &
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # name pid
    local name=$1 pid=$2 t0 t1
    sleep 5
    t0=$(cpu_ticks "$pid")
    : >"$work/log"
    sleep "$secs"
    t1=$(cpu_ticks "$pid")
    local fps
    # No line at all: not one frame drawn in the whole measurement.
    fps=$(grep -ao '[0-9.]* frames/s' "$work/log" | tail -1 || true)
    awk -v n="$name" -v d=$((t1 - t0)) -v s="$secs" -v f="${fps:-0 frames/s}" \
        'BEGIN { printf "%s: %s, %.3f cores (%.1f CPU-s per minute)\n", n, f, d / 100 / s, d / 100 / s * 60 }'
}

# A session to replay: 8 s of needling recorded by the console on the simulated pen.
cat >"$work/screening.json" <<'JSON'
{"client":"C-CPU","dob":"1990-05-01","indication":"rejuvenation","practitioner":"P-7","answers":{"skin_cancer_or_keratosis":false,"open_wounds":false,"active_infection":false,"active_acne_or_rosacea":false,"bleeding_disorder":false,"isotretinoin_6mo":false,"recent_laser_or_peel":false,"anticoagulants":false,"eczema_psoriasis_rosacea":false,"herpes_history":false,"keloids":false,"scleroderma":false,"poor_healing":false,"recent_scars":false,"facial_trauma_6mo":false,"lidocaine_sensitivity":false,"fitzpatrick_iv_vi":false},"confirmed_cautions":[]}
JSON
(echo "session $work/screening.json"; echo "zone cheeks"; echo "depth 0.8"; echo "start"; sleep "$((secs + 10))"; echo "end") |
    "$bin" console --sim --data-dir "$work/rec" >/dev/null 2>&1
record=$(ls "$work"/rec/sessions/*.jsonl)

PUNCTUM_LOG=punctum::frames=info "$bin" --sim --telemetry-hz 1000 --data-dir "$work/live" 2>"$work/log" &
pid=$!
measure "idle, simulated pen at 1000 Hz, no session" "$pid"
kill "$pid"; wait "$pid" 2>/dev/null || true

PUNCTUM_LOG=punctum::frames=info "$bin" replay "$record" --data-dir "$work/rec" 2>"$work/log" &
pid=$!
measure "replay paused, no pen" "$pid"
w=$(xdotool search --sync --name Punctum | head -1)
xdotool windowfocus --sync "$w" key --window "$w" space
measure "replay playing, no pen" "$pid"
kill "$pid"; wait "$pid" 2>/dev/null || true
