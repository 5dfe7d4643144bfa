#!/bin/sh
# Picks the service from the first argument: a module name (services.db_manager,
# sextant.healthcheck, ...) runs as `python -m <module> <args>`; anything else (e.g. the
# registry's `python -m ...` args, or `sh`) is executed as given. No argument is evaluated by
# a shell: "$@" is passed through as a list.
set -e
case "$1" in
  services.*|sextant.*|sextant)
    module="$1"; shift
    exec python -m "$module" "$@" ;;
  "")
    echo "usage: <module> [args], e.g. services.db_manager --help" >&2; exit 2 ;;
  *)
    exec "$@" ;;
esac
