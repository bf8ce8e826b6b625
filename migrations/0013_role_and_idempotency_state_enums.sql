-- Accounts' roles and idempotency keys' states as enum types, like the order, reservation,
-- payment and refund statuses: the values a column may hold are its type.

CREATE TYPE user_role AS ENUM ('CLIENT', 'ADMIN');
ALTER TABLE users DROP CONSTRAINT users_role_check;
DROP INDEX users_active_admins;
ALTER TABLE users ALTER COLUMN role TYPE user_role USING role::user_role;
-- The last active ADMIN check locks these rows.
CREATE INDEX users_active_admins ON users (id) WHERE role = 'ADMIN' AND disabled_at IS NULL;

CREATE TYPE idempotency_state AS ENUM ('in_flight', 'published');
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys
    ALTER COLUMN state TYPE idempotency_state USING state::idempotency_state;
