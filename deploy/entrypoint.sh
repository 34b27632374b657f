#!/bin/sh
# Container entrypoint: check the settings once (one clear message if wrong), then run marketbot.
# `docker run IMAGE status` or `... run --platform slack` pass their arguments through;
# without arguments it runs the bot on Discord. MARKETBOT_BIN names another marketbot executable.
set -eu
MARKETBOT="${MARKETBOT_BIN:-marketbot}"
if [ "$#" -eq 0 ]; then
    set -- run --platform discord
fi
if [ "$1" = "run" ]; then
    "$MARKETBOT" config --check >/dev/null
fi
exec "$MARKETBOT" "$@"
