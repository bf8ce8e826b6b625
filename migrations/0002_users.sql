-- Accounts. Emails are unique case-insensitively; the application stores them trimmed and
-- lower-cased, and the index enforces it whatever the code path.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 254),
    name          text CHECK (name IS NULL OR length(name) <= 200),
    role          text NOT NULL CHECK (role IN ('CLIENT', 'ADMIN')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (email);
-- Keyset pagination of GET /users.
CREATE INDEX users_created_at_id ON users (created_at, id);

CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
