-- Migration 019's notifications fed a per-replica cache of token lookups that could not refuse the very
-- next request after an administrator's UPDATE (the notice arrives after that UPDATE's COMMIT returns).
-- Lookups now read Postgres on every request, sharing statements between concurrent requests
-- (db/token-batch.ts), so nothing listens: the triggers would only cost every token and user change.
DROP TRIGGER IF EXISTS api_tokens_notify_change ON api_tokens;
DROP TRIGGER IF EXISTS api_tokens_notify_truncate ON api_tokens;
DROP TRIGGER IF EXISTS users_notify_change ON users;
DROP TRIGGER IF EXISTS users_notify_truncate ON users;
DROP FUNCTION IF EXISTS spawngate_notify_credential_change();
