-- Replicas keep a short-lived cache of token lookups (db/token-cache.ts). What makes a cached answer
-- wrong is a change to the token's row (revoked, expiry moved, deleted, owner renamed) or to its
-- owner's `users` row (deactivated, deleted, created inactive), whether made by spawngate or by an
-- administrator's SQL. Each such change notifies channel `spawngate_credentials` with the user name
-- affected, on commit, to every listening replica; a TRUNCATE notifies '' (forget everything). A new
-- token needs no notice: a cache never holds "unknown token".
CREATE FUNCTION spawngate_notify_credential_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('spawngate_credentials', '');
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('spawngate_credentials', NEW.username);
    RETURN NULL;
  END IF;
  PERFORM pg_notify('spawngate_credentials', OLD.username);
  IF TG_OP = 'UPDATE' THEN
    IF NEW.username IS DISTINCT FROM OLD.username THEN
      PERFORM pg_notify('spawngate_credentials', NEW.username);
    END IF;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_notify_change
  AFTER UPDATE OF token_hash, username, kind, server_id, expires_at, revoked_at OR DELETE ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION spawngate_notify_credential_change();
CREATE TRIGGER api_tokens_notify_truncate AFTER TRUNCATE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION spawngate_notify_credential_change();
CREATE TRIGGER users_notify_change AFTER INSERT OR UPDATE OF username, active OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION spawngate_notify_credential_change();
CREATE TRIGGER users_notify_truncate AFTER TRUNCATE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION spawngate_notify_credential_change();
