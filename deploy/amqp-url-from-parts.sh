#!/bin/sh
# Entrypoint of the pipeline containers in deploy/compose.yml: when AMQP_URL is not set, builds it
# from RABBITMQ_USER, RABBITMQ_PASSWORD (or RABBITMQ_PASSWORD_FILE), RABBITMQ_HOST, RABBITMQ_PORT
# (5672) and RABBITMQ_VHOST, percent-encoding each part, so that a password with `/`, `@`, `#`, `%`
# or `:` works. Then replaces itself with the command (exec): node stays PID 1 and receives the
# container's SIGTERM.
set -eu
if [ -z "${AMQP_URL:-}" ] && [ -n "${RABBITMQ_HOST:-}" ]; then
  AMQP_URL=$(node -e '
    const e = process.env;
    const pass = e.RABBITMQ_PASSWORD_FILE ? require("fs").readFileSync(e.RABBITMQ_PASSWORD_FILE, "utf8").replace(/\r?\n$/, "") : (e.RABBITMQ_PASSWORD ?? "");
    const q = encodeURIComponent;
    const cred = e.RABBITMQ_USER ? `${q(e.RABBITMQ_USER)}:${q(pass)}@` : "";
    process.stdout.write(`amqp://${cred}${e.RABBITMQ_HOST}:${e.RABBITMQ_PORT || 5672}/${q(e.RABBITMQ_VHOST ?? "")}`);
  ')
  export AMQP_URL
fi
exec "$@"
