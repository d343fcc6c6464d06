-- @bus/outbox-postgres: records of pgIdempotencyStore (the idempotent() middleware of @bus/core).
-- One row per handled message and consumer group: a lease (done = false, token of its holder) or done.
CREATE TABLE IF NOT EXISTS bus_idempotency (
  key        text        PRIMARY KEY,
  token      text        NOT NULL,
  done       boolean     NOT NULL DEFAULT false,
  expires_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS bus_idempotency_expires ON bus_idempotency (expires_at);
