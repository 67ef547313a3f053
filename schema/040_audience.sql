-- 040_audience.sql - who is in a set of rooms, online or not, with their
-- contact points: the people fallback delivery tries to reach (docs/fallback.md, "2. Plan").
--
-- The shipped version reads the demo tenant layout (hub.create_demo_tenant):
-- the tenant's "User" table. A deployment with another layout replaces this
-- function, keeping its signature.

-- Room semantics, mirroring the rooms the hub puts connections in:
--   all                               every user of the tenant
--   user:X                            the user whose id is X
--   role:guard|role:resident|role:admin  users whose role is GUARD|RESIDENT|ADMIN
--   unit:U                            users whose "unitId" is U
--   anything else                     nobody (e.g. a custom room only live sockets join)
-- Each user appears once, ordered by id.
-- It reads tenant schemas, so it runs as the schema's owner (SECURITY
-- DEFINER, fixed search_path) and only for registered tenants (hub.is_tenant);
-- nobody but administrators may call it directly (080_roles.sql).
CREATE OR REPLACE FUNCTION hub.audience(tenant text, rooms text[])
RETURNS TABLE (user_id text, device_token text, phone text, email text, locale text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    everyone boolean;
    ids      text[];
    roles    text[];
    units    text[];
BEGIN
    IF NOT hub.is_tenant(audience.tenant) THEN
        RAISE EXCEPTION 'hub.audience: tenant must name an existing registered tenant schema, got %',
            hub.quote_for_error(audience.tenant) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT coalesce(bool_or(r = 'all'), false),
           coalesce(array_agg(substr(r, 6)) FILTER (WHERE r LIKE 'user:%'), '{}'),
           coalesce(array_agg(CASE r WHEN 'role:guard'    THEN 'GUARD'
                                     WHEN 'role:resident' THEN 'RESIDENT'
                                     WHEN 'role:admin'    THEN 'ADMIN' END)
                    FILTER (WHERE r IN ('role:guard', 'role:resident', 'role:admin')), '{}'),
           coalesce(array_agg(substr(r, 6)) FILTER (WHERE r LIKE 'unit:%'), '{}')
      INTO everyone, ids, roles, units
      FROM unnest(coalesce(audience.rooms, '{}')) AS r;

    -- The tenant is an identifier: quoted with %I, never concatenated.
    RETURN QUERY EXECUTE format(
        'SELECT DISTINCT ON (u.id) u.id, u."deviceToken", u."phoneNumber", u.email, u.locale
           FROM %I."User" u
          WHERE $1 OR u.id = ANY ($2) OR u.role = ANY ($3) OR u."unitId" = ANY ($4)
          ORDER BY u.id', audience.tenant)
    USING everyone, ids, roles, units;
END
$fn$;
