-- Tokens in the audit log (issue 11): minting and revoking an API token are recorded like admin
-- changes, with the same actor settings (spawngate.actor / spawngate.via). Only metadata is logged;
-- the token's hash never leaves api_tokens. A server's gateway token, minted and revoked by spawngate
-- itself with no actor named, is recorded as actor 'spawngate'.
CREATE INDEX api_tokens_username_idx ON api_tokens (username, created_at DESC);

CREATE FUNCTION spawngate_audit_token() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  what TEXT;
BEGIN
  IF TG_OP = 'INSERT' THEN
    what := 'token.mint';
  ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
    what := 'token.revoke';
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO audit_log (actor, action, target, details)
  VALUES (CASE WHEN NULLIF(current_setting('spawngate.actor', true), '') IS NULL AND NEW.server_id IS NOT NULL
               THEN 'spawngate' ELSE spawngate_audit_actor() END,
          what, NEW.username,
          jsonb_strip_nulls(jsonb_build_object('token_id', NEW.id, 'kind', NEW.kind, 'server_id', NEW.server_id,
                                               'note', NEW.note, 'expires_at', NEW.expires_at,
                                               'via', NULLIF(current_setting('spawngate.via', true), ''))));
  RETURN NULL;
END
$$;
CREATE TRIGGER api_tokens_audit AFTER INSERT OR UPDATE OF revoked_at ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_token();
