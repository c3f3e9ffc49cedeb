#!/usr/bin/env bash
# Makes sure MariaDB and Redis are installed (Debian packages) and running on loopback,
# with MariaDB's root reachable on 127.0.0.1:3306 without a password (a development setup).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mysqladmin >/dev/null 2>&1 || missing+=(mariadb-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $name did not come up" >&2
  return 1
}

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis on 127.0.0.1:6379"
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi

if ! mysqladmin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; then
  if ! mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1; then
    echo "services: starting MariaDB"
    $SUDO mkdir -p /run/mysqld
    $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
    # Started as root, mariadbd must be told to run as mysql or it exits at once.
    $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    wait_for MariaDB mysqladmin --protocol=socket -uroot ping
  fi
  if ! mysqladmin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1 || ! mysql -h 127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian install lets root in only over the socket: allow a passwordless loopback login too.
    echo "services: allowing root@127.0.0.1 without a password (development only)"
    $SUDO mysql --protocol=socket -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  fi
  wait_for "MariaDB on 127.0.0.1:3306" mysql -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1'
fi
echo "services: MariaDB 127.0.0.1:3306 and Redis 127.0.0.1:6379 are up"
