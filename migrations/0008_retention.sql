-- Rows that would otherwise only grow are purged by the api every PURGE_INTERVAL_MS (README,
-- Security): idempotency keys after 24 hours, used refresh tokens after 7 days, sessions (with
-- their tokens) a day after they ended. These indexes let each purge find them without a scan.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
-- Live sessions of a user, newest first: the cap on sessions per user revokes past the newest.
CREATE INDEX sessions_live_by_user_newest ON sessions (user_id, created_at DESC) WHERE revoked_at IS NULL;
