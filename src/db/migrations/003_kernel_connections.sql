-- Websocket connections per kernel per API replica. Each replica refreshes its own rows; rows not
-- refreshed recently belong to a replica that died, so a dead replica never keeps a kernel "connected".
CREATE TABLE kernel_connections (
  kernel_id    UUID NOT NULL REFERENCES kernels (id) ON DELETE CASCADE,
  replica_id   TEXT NOT NULL,
  connections  INTEGER NOT NULL CHECK (connections >= 0),
  seen_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (kernel_id, replica_id)
);

-- Superseded by kernel_connections (a shared counter could not forget a replica that died).
ALTER TABLE kernels DROP COLUMN connections;
