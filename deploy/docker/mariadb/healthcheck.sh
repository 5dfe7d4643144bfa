#!/bin/sh
# healthcheck.sh of the local MariaDB stand-in image: the two checks Sextant's docker-compose.yml
# asks the official image's script for.
#   --connect              the server accepts connections on its socket
#   --innodb_initialized   and InnoDB is ready (logs in as root with MARIADB_ROOT_PASSWORD)
set -eu
SOCKET=/run/mysqld/mysqld.sock
for check in "$@"; do
  case "$check" in
    --connect)
      mariadb-admin --socket="$SOCKET" ping >/dev/null 2>&1 || { echo "no connection" >&2; exit 1; } ;;
    --innodb_initialized)
      ready=$(MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-}" mariadb --socket="$SOCKET" -uroot -N -s -e \
        "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE='InnoDB' AND SUPPORT IN ('YES','DEFAULT')" \
        2>/dev/null) || ready=""
      [ "$ready" = 1 ] || { echo "InnoDB not initialised" >&2; exit 1; } ;;
    *) echo "healthcheck.sh: unknown check $check" >&2; exit 2 ;;
  esac
done
