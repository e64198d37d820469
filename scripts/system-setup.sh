#!/usr/bin/env bash
# Install and start what the test suite talks to: nginx (Debian's nginx-light), Chromium (the
# live-reload tests drive it with Playwright), NSS's certutil (runserver --https's local CA is
# trusted in a throwaway NSS database), the build dependencies of mysqlclient, and the
# PostgreSQL and MariaDB servers when they are installed.
# Idempotent and quick when everything is there. Without root or apt-get it only says what is
# missing: the tests that need a missing piece are then skipped with a printed reason.
set -u

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)  # trusting the local CA (--https)
if command -v pkg-config >/dev/null 2>&1; then
  pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || need+=(libmariadb-dev)
else
  need+=(libmariadb-dev)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/system-setup-apt.log 2>&1 || {
      apt-get update -q >/tmp/system-setup-apt.log 2>&1 &&
        apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/system-setup-apt.log 2>&1
    } || echo "system-setup: could not install ${need[*]} (see /tmp/system-setup-apt.log); tests needing them will be skipped"
  else
    echo "system-setup: missing ${need[*]} and cannot install them here (needs root and apt-get); tests needing them will be skipped"
  fi
fi

# nginx-light's package starts a server on port 80; the tests run their own on free ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx >/dev/null 2>&1 || true
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
  fi
fi
if ! port_open 3306; then
  if [ -x /usr/sbin/mariadbd ] && command -v start-stop-daemon >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
  fi
fi
for _ in $(seq 1 50); do
  { port_open 5432 || ! [ -d /etc/postgresql ]; } && { port_open 3306 || ! [ -x /usr/sbin/mariadbd ]; } && break
  sleep 0.2
done
port_open 5432 && echo "system-setup: PostgreSQL answers on 127.0.0.1:5432" || echo "system-setup: no PostgreSQL on 127.0.0.1:5432"
port_open 3306 && echo "system-setup: MariaDB answers on 127.0.0.1:3306" || echo "system-setup: no MariaDB on 127.0.0.1:3306"
exit 0
