-- Account management by ADMINs: disabled accounts, and the audit trail of every change made to
-- an account's role or status.

-- A disabled account cannot log in or refresh; its sessions were revoked when it was disabled.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- The last active ADMIN check locks these rows.
CREATE INDEX users_active_admins ON users (id) WHERE role = 'ADMIN' AND disabled_at IS NULL;
-- GET /users?email=<prefix> (emails are stored lower-cased).
CREATE INDEX users_email_prefix ON users (email text_pattern_ops);

-- Who changed which account, when, and what: `changes` holds each changed attribute as
-- {"from": …, "to": …}, e.g. {"role": {"from": "ADMIN", "to": "CLIENT"}}.
CREATE TABLE user_audit (
    id       bigserial PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id uuid REFERENCES users (id) ON DELETE SET NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    changes  jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'object' AND changes <> '{}')
);

-- GET /users/{id}/audit, oldest first, keyset pages.
CREATE INDEX user_audit_by_user ON user_audit (user_id, id);
