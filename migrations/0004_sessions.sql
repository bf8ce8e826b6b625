-- Login sessions. A session is one refresh-token family: it starts at login (or registration),
-- every refresh replaces its refresh token with a new one, and it ends when revoked (logout,
-- password change, detected token theft) or when it expires. Access tokens carry the session id
-- (`sid`), so revoking a session ends its access tokens at once too.
CREATE TABLE sessions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Every refresh token ever issued, stored only as its SHA-256. A token is used once: `used_at`
-- set means it was rotated, and presenting it again revokes its whole session.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
