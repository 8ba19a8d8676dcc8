-- Kernels launched through the gateway. Connection info lives here so any API replica can bridge any
-- kernel; the HMAC key is stored encrypted (AES-256-GCM, see secret-box.ts), never in clear.
CREATE TABLE kernels (
  id                UUID PRIMARY KEY,
  username          TEXT NOT NULL,
  kernel_name       TEXT NOT NULL,
  environment       TEXT,
  experiment_id     BIGINT REFERENCES experiments (id) ON DELETE SET NULL,
  experiment_name   TEXT,
  limits            JSONB NOT NULL DEFAULT '{}'::jsonb,
  backend           TEXT NOT NULL,
  workload_name     TEXT NOT NULL UNIQUE,
  state             TEXT NOT NULL CHECK (state IN ('starting', 'running', 'restarting', 'dead', 'terminated', 'failed')),
  host              TEXT,
  ports             JSONB NOT NULL,
  key_ciphertext    TEXT NOT NULL,
  signature_scheme  TEXT NOT NULL DEFAULT 'hmac-sha256',
  interrupt_mode    TEXT NOT NULL DEFAULT 'signal' CHECK (interrupt_mode IN ('signal', 'message')),
  execution_state   TEXT NOT NULL DEFAULT 'starting',
  connections       INTEGER NOT NULL DEFAULT 0 CHECK (connections >= 0),
  last_activity     TIMESTAMPTZ NOT NULL DEFAULT now(),
  message           TEXT,
  backend_ref       JSONB,
  -- What to run again on restart: argv, environment (KERNEL_* and allow-listed only), working dir.
  launch            JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  stopped_at        TIMESTAMPTZ
);
CREATE INDEX kernels_user_state_idx ON kernels (username, state);
CREATE INDEX kernels_experiment_state_idx ON kernels (experiment_id, state);

-- The audit trail of launches (who, what, with which limits, outcome).
CREATE TABLE kernel_launches (
  id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kernel_id       UUID NOT NULL,
  username        TEXT NOT NULL,
  kernel_name     TEXT NOT NULL,
  environment     TEXT,
  experiment_name TEXT,
  limits          JSONB NOT NULL DEFAULT '{}'::jsonb,
  outcome         TEXT NOT NULL,
  message         TEXT,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX kernel_launches_user_idx ON kernel_launches (username, created_at);
