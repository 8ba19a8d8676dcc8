-- Usage history for the admin page: what each experiment's live kernels held, sampled at a coarse
-- interval (usage.sample_interval_seconds) and pruned after usage.retention_days. sampled_at is the
-- start of the interval, so every replica sampling the same interval writes the same key and the
-- first one wins (INSERT … ON CONFLICT DO NOTHING): replicas never double-sample.
-- experiment is '' for kernels without an experiment (unregistered environment, default profile).
CREATE TABLE usage_samples (
  sampled_at          TIMESTAMPTZ NOT NULL,
  experiment          TEXT NOT NULL,
  kernels             INTEGER NOT NULL,
  cpu_request         NUMERIC NOT NULL,
  cpu_limit           NUMERIC NOT NULL,
  memory_request_mib  BIGINT NOT NULL,
  memory_limit_mib    BIGINT NOT NULL,
  gpu_limit           INTEGER NOT NULL,
  PRIMARY KEY (sampled_at, experiment)
);
CREATE INDEX usage_samples_experiment_idx ON usage_samples (experiment, sampled_at);

-- Each /metrics scrape reads the live kernels; ended ones pile up in the table, so the scrape finds the
-- live ones through this small partial index instead of scanning every kernel ever started.
CREATE INDEX kernels_live_idx ON kernels (experiment_id) WHERE state IN ('starting', 'running', 'restarting', 'dead');
