#!/usr/bin/env bash
# Screenshots of TensorBoard for the README, from a real run: docs/screenshots.sh LOGDIR RUN_REGEX
# e.g. docs/screenshots.sh runs 'lenet/20261122-163000'. Needs Debian's chromium (apt install chromium).
set -euo pipefail
logdir=$1 run=$2 port=6199
cd "$(dirname "$0")"
tensorboard --logdir "$logdir" --host 127.0.0.1 --port $port >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
until curl -sf "http://127.0.0.1:$port/data/runs" | grep -q "$run/test"; do sleep 1; done
shot() {  # name, window size, dashboard and its URL state
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2" --virtual-time-budget=10000 \
    --screenshot="$1.png" "http://127.0.0.1:$port/#$3" 2>/dev/null
  python -c "from PIL import Image; Image.open('$1.png').quantize(64).save('$1.png', optimize=True)"
}
shot tensorboard_scalars 1300,520 "scalars&tagFilter=epoch_(accuracy%7Closs)%7Cstep_loss&_smoothingWeight=0&regexInput=$run"
shot tensorboard_images 1300,760 "images&tagFilter=mistakes%7Cconfusion&regexInput=$run/test"
