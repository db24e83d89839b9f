#!/bin/sh
# The image's entrypoint: migrate the database, then run the bot.
#
#   entrypoint.sh                      resobot init, then resobot run (long polling)
#   entrypoint.sh --webhook [--listen HOST:PORT]
#                                      resobot init, then resobot run --webhook ...
#   entrypoint.sh COMMAND [ARGS]       any other resobot command as it is, e.g.
#                                      `invite --institution VPD --role contact`
#
# `resobot init` is idempotent (Alembic migrations + the plan catalog). While the database does
# not answer yet (exit code 3, e.g. PostgreSQL still starting) it is tried again every
# INIT_RETRY_SECONDS, INIT_RETRIES times; any other failure stops the container at once.
set -eu

case "${1:-}" in
    "" | -*) ;;
    *) exec resobot "$@" ;;
esac

retries="${INIT_RETRIES:-10}"
delay="${INIT_RETRY_SECONDS:-3}"
attempt=1
while :; do
    status=0
    resobot init || status=$?
    [ "$status" -eq 0 ] && break
    if [ "$status" -ne 3 ] || [ "$attempt" -ge "$retries" ]; then
        echo "entrypoint: resobot init failed (exit $status); not starting the bot" >&2
        exit "$status"
    fi
    echo "entrypoint: database not reachable yet; retry $attempt of $retries in ${delay}s" >&2
    attempt=$((attempt + 1))
    sleep "$delay"
done

exec resobot run "$@"
