-- @bus/outbox-postgres: the outbox table. Runs in the schema that migrate() selects (search_path).
-- One row per message, written by outbox.publish() in the application's transaction, already encoded
-- by the bus's codec; the relay forwards unsent rows in seq order and deletes (or marks) them.
CREATE TABLE IF NOT EXISTS bus_outbox (
  seq        bigserial   PRIMARY KEY,
  id         text        NOT NULL,            -- envelope id (UUIDv7)
  transport  text,                            -- transport name; NULL: the bus's default transport
  topic      text        NOT NULL,
  key        text,                            -- ordering / partition key
  headers    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  value      bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz                      -- set when sent, with `afterSend: 'mark'`
);

-- The relay's scan: unsent rows in order.
CREATE INDEX IF NOT EXISTS bus_outbox_unsent ON bus_outbox (seq) WHERE sent_at IS NULL;
-- Per-key order check: the oldest unsent row of a key.
CREATE INDEX IF NOT EXISTS bus_outbox_unsent_key ON bus_outbox (key, seq) WHERE sent_at IS NULL;
