#!/bin/sh
# Entry point of the local MariaDB stand-in image (deploy/docker/build-base-images). It accepts
# the settings Sextant's docker-compose.yml gives the official MariaDB image, so either image
# can serve: MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1) and MARIADB_DATABASE.
# On an empty data directory it creates the system tables, sets root's password (for local and
# remote logins) and creates the database, using a temporary server reachable only through its
# socket; then it runs the server in the foreground as the container's main process.
set -eu

case "${1:-}" in
  -*) set -- mariadbd "$@" ;;   # options only: they are the server's
esac
[ "${1:-}" = mariadbd ] || exec "$@"

DATADIR=/var/lib/mysql
INIT_SOCKET=/run/mysqld/init.sock

# A value as a single-quoted SQL string literal (backslashes and quotes escaped).
sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"; }
# A value as a backquoted SQL identifier.
sql_name() { printf '`%s`' "$(printf '%s' "$1" | sed -e 's/`/``/g')"; }

if [ ! -d "$DATADIR/mysql" ]; then
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ] && [ "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}" != 1 ]; then
    echo "mariadb: set MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)" >&2
    exit 2
  fi
  echo "mariadb: initialising $DATADIR" >&2
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  mariadbd --datadir="$DATADIR" --skip-networking --socket="$INIT_SOCKET" \
    --pid-file=/run/mysqld/init.pid &
  init_pid=$!
  tries=0
  until mariadb-admin --socket="$INIT_SOCKET" -uroot ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "mariadb: the initialising server did not start" >&2; exit 1; }
    sleep 0.5
  done
  password=$(sql_string "${MARIADB_ROOT_PASSWORD:-}")
  {
    # mariadb-install-db also makes password-less root accounts for 127.0.0.1, ::1 and the
    # host name; a TCP login from 127.0.0.1 would match those before 'root'@'%'.
    echo "DELETE FROM mysql.global_priv WHERE User <> 'mariadb.sys' AND NOT (User = 'root' AND Host = 'localhost');"
    echo "DELETE FROM mysql.proxies_priv WHERE NOT (User = 'root' AND Host = 'localhost');"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $password;"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $password;"
    echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_name "$MARIADB_DATABASE");"
    fi
  } | mariadb --socket="$INIT_SOCKET" -uroot
  mariadb-admin --socket="$INIT_SOCKET" -uroot --password="${MARIADB_ROOT_PASSWORD:-}" shutdown
  wait "$init_pid" || true
  echo "mariadb: initialised" >&2
fi

exec "$@"
