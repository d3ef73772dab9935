#!/usr/bin/env bash
# Makes sure what the test suite needs is running: PostgreSQL on 127.0.0.1:5432 (trust or
# password-less access for the postgres user), RabbitMQ on 127.0.0.1:5672 (guest/guest),
# xmllint (an independent XSD validator used by the tests), xmlsec1 (an independent
# XML-signature implementation used by the tests) and Chromium with chromedriver (a real browser
# for the login test).
# Starts them when installed but stopped; installs them from Debian's packages when missing and
# running as root on Debian/Ubuntu (saying so); otherwise stops with one sentence naming what is
# missing and how to get it.
set -euo pipefail

say() { echo "ensure-services: $*"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then say "running apt-get update"; apt-get update -qq; apt_updated=1; fi
  say "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_port() {
  for _ in $(seq 1 60); do listening "$1" && return 0; sleep 1; done
  return 1
}

# --- PostgreSQL ---------------------------------------------------------------------------
if ! listening 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if can_install; then apt_install postgresql; else
      echo "PostgreSQL is not running on 127.0.0.1:5432 and not installed: install it (Debian: apt-get install postgresql) or run a container (docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15)." >&2; exit 1
    fi
  fi
  say "starting PostgreSQL"
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port 5432 || { echo "PostgreSQL did not start listening on 127.0.0.1:5432; see /var/log/postgresql/." >&2; exit 1; }
fi

# The tests connect as postgres without a password over TCP.
if command -v psql >/dev/null 2>&1 && ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ -d /etc/postgresql ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    say "allowing password-less local TCP access for tests in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  else
    echo "PostgreSQL on 127.0.0.1:5432 refuses the postgres user without a password: set DATABASE_URL to a server the tests may create databases on." >&2; exit 1
  fi
fi

# --- RabbitMQ -----------------------------------------------------------------------------
if ! listening 5672; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if can_install; then apt_install rabbitmq-server; else
      echo "RabbitMQ is not running on 127.0.0.1:5672 and not installed: install it (Debian: apt-get install rabbitmq-server) or run a container (docker run -p 5672:5672 rabbitmq:3)." >&2; exit 1
    fi
  fi
  if ! listening 5672; then
    say "starting RabbitMQ"
    rabbitmq-server -detached || true
    wait_port 5672 || { echo "RabbitMQ did not start listening on 127.0.0.1:5672; see /var/log/rabbitmq/." >&2; exit 1; }
  fi
fi
# The port opens before the broker accepts work; wait until it answers.
if command -v rabbitmqctl >/dev/null 2>&1; then
  for _ in $(seq 1 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
fi

# Separate virtual hosts keep the tests and the benchmark away from a real deployment's queues.
if command -v rabbitmqctl >/dev/null 2>&1; then
  for vhost in gsko-test gsko-bench; do
    rabbitmqctl -q add_vhost "$vhost" >/dev/null 2>&1 || true
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null 2>&1 || true
  done
fi

# --- independent validators used by tests --------------------------------------------------
if ! command -v xmllint >/dev/null 2>&1; then
  if can_install; then apt_install libxml2-utils; else
    echo "xmllint is missing (the tests validate XML against the XSD with it): install libxml2-utils." >&2; exit 1
  fi
fi
if ! command -v openssl >/dev/null 2>&1; then
  if can_install; then apt_install openssl; else
    echo "openssl is missing (the tests make throwaway certificates with it): install openssl." >&2; exit 1
  fi
fi
if ! command -v xmlsec1 >/dev/null 2>&1; then
  if can_install; then apt_install xmlsec1; else
    echo "xmlsec1 is missing (the tests check XML signatures against it): install xmlsec1." >&2; exit 1
  fi
fi
# A real browser for the resident-login test (tests/e2e/login_browser.rs), which drives Debian's
# Chromium through its WebDriver server; the paths are Debian's.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if can_install; then apt_install chromium chromium-driver; else
    echo "Chromium or chromedriver is missing (the browser login test runs /usr/bin/chromium through /usr/bin/chromedriver): install Debian's chromium and chromium-driver packages." >&2; exit 1
  fi
fi
# Independent implementations the tests compare against (JSON Schema, CloudEvents SDK).
if command -v python3 >/dev/null 2>&1; then
  if ! python3 -c 'import jsonschema, referencing, cloudevents.core, mt940, signxml, saml2, cryptography' >/dev/null 2>&1; then
    say "installing the Python test dependencies (scripts/requirements-test.txt)"
    python3 -m pip install -q -r "$(dirname "$0")/requirements-test.txt" \
      || { echo "pip could not install scripts/requirements-test.txt (needed by the schema tests)." >&2; exit 1; }
  fi
fi
say "PostgreSQL, RabbitMQ, xmllint, Chromium and the Python validators are ready"
