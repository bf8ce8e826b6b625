-- Shared helpers used by every table of the service.

-- Keeps `updated_at` current on every UPDATE, so no code path can forget it.
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$;
