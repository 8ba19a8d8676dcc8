-- Identity and administration (issue 8): where a membership came from, an audit log written by the
-- database itself (so plain admin SQL is audited like the API and the CLI), views an administrator
-- can query, and constraints that reject bad data with names that say what is wrong.
-- DESIGN §4 stays intact: only columns, constraints, tables and views are added.

-- Memberships synchronized from IdP groups are 'oidc'; everything typed by an administrator stays
-- 'sql' (the default), and the group sync never touches those rows.
ALTER TABLE experiment_members
  ADD COLUMN source TEXT NOT NULL DEFAULT 'sql'
    CONSTRAINT experiment_members_source_known CHECK (source IN ('sql', 'oidc')),
  ADD COLUMN added_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- NOT VALID: rows that predate this migration are left as they are; new and updated rows are checked.
ALTER TABLE users
  ADD CONSTRAINT users_username_no_whitespace_or_slash CHECK (username !~ '[[:space:][:cntrl:]/]') NOT VALID;
ALTER TABLE users
  ADD CONSTRAINT users_email_looks_like_address CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$') NOT VALID;
ALTER TABLE experiments
  ADD CONSTRAINT experiments_name_not_blank CHECK (btrim(name) <> '' AND name = btrim(name)) NOT VALID;
ALTER TABLE environments
  ADD CONSTRAINT environments_name_not_blank CHECK (btrim(name) <> '' AND name = btrim(name)) NOT VALID;

-- Who did what, when. `actor` comes from the transaction-local setting spawngate.actor (set by the
-- admin API, the CLI and the group sync); plain SQL sessions are recorded as 'sql:<role>'.
CREATE TABLE audit_log (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  target      TEXT,
  details     JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, created_at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, created_at DESC);

CREATE FUNCTION spawngate_audit_actor() RETURNS TEXT LANGUAGE sql STABLE AS $$
  SELECT COALESCE(NULLIF(current_setting('spawngate.actor', true), ''), 'sql:' || session_user)
$$;

-- One row per changed admin row: action '<table>.<insert|update|delete>', the row before and after.
CREATE FUNCTION spawngate_audit_admin_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_row JSONB := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
  new_row JSONB := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
  row_now JSONB := COALESCE(new_row, old_row);
  target_name TEXT;
BEGIN
  IF TG_OP = 'UPDATE' AND old_row = new_row THEN
    RETURN NULL;
  END IF;
  IF TG_TABLE_NAME = 'users' THEN
    target_name := row_now->>'username';
  ELSIF TG_TABLE_NAME = 'experiment_members' THEN
    -- The names, not the ids; on a cascading delete the parent may already be gone.
    SELECT COALESCE((SELECT name FROM experiments WHERE id = (row_now->>'experiment_id')::bigint), 'experiment#' || (row_now->>'experiment_id'))
           || '/' ||
           COALESCE((SELECT username FROM users WHERE id = (row_now->>'user_id')::bigint), 'user#' || (row_now->>'user_id'))
      INTO target_name;
  ELSE
    target_name := row_now->>'name';
  END IF;
  INSERT INTO audit_log (actor, action, target, details)
  VALUES (spawngate_audit_actor(), TG_TABLE_NAME || '.' || lower(TG_OP), target_name,
          jsonb_strip_nulls(jsonb_build_object('old', old_row, 'new', new_row,
                                               'via', NULLIF(current_setting('spawngate.via', true), ''))));
  RETURN NULL;
END
$$;

CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_admin_change();
CREATE TRIGGER experiments_audit AFTER INSERT OR UPDATE OR DELETE ON experiments
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_admin_change();
CREATE TRIGGER environments_audit AFTER INSERT OR UPDATE OR DELETE ON environments
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_admin_change();
CREATE TRIGGER experiment_members_audit AFTER INSERT OR UPDATE OR DELETE ON experiment_members
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_admin_change();

-- Kernel launches (kernel_launches, written by the gateway) appear in the same log.
CREATE FUNCTION spawngate_audit_launch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_log (created_at, actor, action, target, details)
  VALUES (NEW.created_at, NEW.username, 'kernel.launch', NEW.kernel_id::text,
          jsonb_strip_nulls(jsonb_build_object('kernel_name', NEW.kernel_name, 'environment', NEW.environment,
                                               'experiment', NEW.experiment_name, 'limits', NEW.limits,
                                               'outcome', NEW.outcome, 'message', NEW.message)));
  RETURN NULL;
END
$$;
CREATE TRIGGER kernel_launches_audit AFTER INSERT ON kernel_launches
  FOR EACH ROW EXECUTE FUNCTION spawngate_audit_launch();

-- What a launch by each user in each registered environment would get, with the same precedence as
-- the gateway's quota check (src/db/quotas.ts): inactive experiment, then membership, then user.
CREATE VIEW effective_limits AS
SELECT u.username,
       env.name AS environment,
       e.name AS experiment,
       CASE
         WHEN NOT e.active THEN 'refused: experiment inactive'
         WHEN m.user_id IS NULL THEN 'refused: not a member'
         WHEN NOT u.active THEN 'refused: user inactive'
         ELSE 'granted'
       END AS status,
       e.cpu_request, e.cpu_limit, e.memory_request_mib, e.memory_limit_mib, e.gpu_limit,
       m.source AS membership_source
  FROM users u
 CROSS JOIN environments env
  JOIN experiments e ON e.id = env.experiment_id
  LEFT JOIN experiment_members m ON m.experiment_id = e.id AND m.user_id = u.id;

-- Who belongs to what, with names instead of ids.
CREATE VIEW memberships AS
SELECT e.name AS experiment, u.username, m.source, m.added_at, e.active AS experiment_active, u.active AS user_active
  FROM experiment_members m
  JOIN experiments e ON e.id = m.experiment_id
  JOIN users u ON u.id = m.user_id;

-- Resources held right now by each experiment's live kernels (starting, running, restarting, dead
-- but not yet cleaned up), from the limits recorded on each kernel at launch.
CREATE VIEW experiment_usage AS
SELECT e.name AS experiment,
       e.active,
       count(k.id)::int AS kernels,
       COALESCE(sum((k.limits->>'cpu_request')::numeric), 0) AS cpu_request,
       COALESCE(sum((k.limits->>'cpu_limit')::numeric), 0) AS cpu_limit,
       COALESCE(sum((k.limits->>'memory_request_mib')::bigint), 0)::bigint AS memory_request_mib,
       COALESCE(sum((k.limits->>'memory_limit_mib')::bigint), 0)::bigint AS memory_limit_mib,
       COALESCE(sum((k.limits->>'gpu_limit')::int), 0)::int AS gpu_limit
  FROM experiments e
  LEFT JOIN kernels k ON k.experiment_id = e.id AND k.state IN ('starting', 'running', 'restarting', 'dead')
 GROUP BY e.id, e.name, e.active;
