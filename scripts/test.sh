#!/usr/bin/env bash
# The whole test suite: `scripts/test.sh [cargo test args...]`.
#
# Tests that need PostgreSQL, a streaming replica or Redis read AGORA_TEST_DATABASE_URL,
# AGORA_TEST_REPLICA_URL and AGORA_TEST_REDIS_URL. When those are unset and the services answer on
# their default loopback ports, this script points the tests at them (starting the replica with
# scripts/pg-replica.sh); otherwise those tests say they were skipped (and fail under CI=true).
# The email tests run the SMTP server AGORA_TEST_SMTP_SINK names (installed here by
# scripts/smtp-sink.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${AGORA_TEST_DATABASE_URL:-}" ]] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432; then
  export AGORA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
fi
# A streaming replica of that cluster for the read-routing tests (needs root or the postgres user).
if [[ -n "${AGORA_TEST_DATABASE_URL:-}" && -z "${AGORA_TEST_REPLICA_URL:-}" ]]; then
  if url=$(scripts/pg-replica.sh start 2>/tmp/agora-pg-replica.err); then
    export AGORA_TEST_REPLICA_URL="$url"
  else
    echo "no replica: $(tail -n 1 /tmp/agora-pg-replica.err)"
  fi
fi
if [[ -z "${AGORA_TEST_REDIS_URL:-}" ]] && command -v redis-cli >/dev/null 2>&1 \
   && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  export AGORA_TEST_REDIS_URL="redis://127.0.0.1:6379"
fi
# A loopback SMTP server (aiosmtpd) for the email tests; each test starts its own.
if [[ -z "${AGORA_TEST_SMTP_SINK:-}" ]]; then
  if sink=$(scripts/smtp-sink.sh --install-only 2>/tmp/agora-smtp-sink.err); then
    export AGORA_TEST_SMTP_SINK="$sink"
  else
    echo "no SMTP sink: $(tail -n 1 /tmp/agora-smtp-sink.err)"
  fi
fi
echo "AGORA_TEST_SMTP_SINK=${AGORA_TEST_SMTP_SINK:-<unset: email tests skip>}"
echo "AGORA_TEST_DATABASE_URL=${AGORA_TEST_DATABASE_URL:-<unset: PostgreSQL tests skip>}"
echo "AGORA_TEST_REPLICA_URL=${AGORA_TEST_REPLICA_URL:-<unset: replica tests skip>}"
echo "AGORA_TEST_REDIS_URL=${AGORA_TEST_REDIS_URL:-<unset: Redis tests skip>}"
exec cargo test --workspace "$@"
