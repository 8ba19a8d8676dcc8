-- User names are JupyterHub's (issue 15): any Unicode but '/', with spaces, apostrophes and '@' inside
-- ('a b', 'o''neil', 'zoë-łódź'). The database refuses only what src/profiles/names.ts refuses: a
-- name that cannot be one path component (it names the home directory) or that JupyterHub refuses.
-- NOT VALID as before: rows that predate this migration are left as they are.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_username_no_whitespace_or_slash;
ALTER TABLE users
  ADD CONSTRAINT users_username_is_hub_name CHECK (
    username !~ '[[:cntrl:]/]'
    AND username !~ '^[[:space:]]|[[:space:]]$'
    AND username NOT IN ('.', '..')
    AND octet_length(username) <= 255
  ) NOT VALID;
