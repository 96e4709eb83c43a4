-- The auth_query function for pgnap's authenticating mode (docs/configuration.md, "The
-- auth_query and its privileges"), with
--
--   [instances.NAME.auth]
--   mode = "gateway"
--   file = "userlist.txt"     # holds pgnap_auth's own password: "pgnap_auth" "..."
--   user = "pgnap_auth"
--   query = "SELECT username, verifier FROM pgnap.user_lookup($1)"
--
-- pgnap runs the query in the database the client asked for, so run this file, as a
-- superuser, in template1 (databases created afterwards have it) and in every database that
-- clients use through pgnap and exists already. Create the role once per cluster first:
--
--   sudo -u postgres psql -c "CREATE ROLE pgnap_auth LOGIN PASSWORD 'long and random'"
--   sudo -u postgres psql -d template1 -v ON_ERROR_STOP=1 < pgnap-user-lookup.sql
--   sudo -u postgres psql -d DBNAME -v ON_ERROR_STOP=1 < pgnap-user-lookup.sql
--
-- The function runs with its owner's rights (SECURITY DEFINER) to read pg_shadow, which only a
-- superuser may read; a fixed search_path keeps it from running anything else, and only
-- pgnap_auth may call it. It returns no row for an unknown user, nor for a superuser: their
-- verifiers stay out of pgnap's reach, and they log in to PostgreSQL directly.

CREATE SCHEMA IF NOT EXISTS pgnap;
CREATE OR REPLACE FUNCTION pgnap.user_lookup(i_username text)
  RETURNS TABLE (username text, verifier text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT usename::text, passwd::text FROM pg_catalog.pg_shadow
     WHERE usename = i_username AND NOT usesuper
  $$;
REVOKE ALL ON FUNCTION pgnap.user_lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgnap TO pgnap_auth;
GRANT EXECUTE ON FUNCTION pgnap.user_lookup(text) TO pgnap_auth;
