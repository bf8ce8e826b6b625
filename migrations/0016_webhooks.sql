-- Outbound webhooks: the endpoints ADMINs register, one delivery per (event, endpoint), and
-- every attempt of each. The pending attempts themselves wait in JetStream (stream WEBHOOKS);
-- these rows say what was tried, what is due next, and what a receiver answered.

-- An endpoint: where to send, which event types (`*`: all), its signing secret encrypted with
-- the deployment's WEBHOOK_ENCRYPTION_KEY (nonce and ciphertext, the endpoint's id as
-- associated data), and the secret it replaced while that one still signs beside it.
-- `failing_since` is the first failed attempt since the last success: an endpoint failing for
-- WEBHOOK_DISABLE_AFTER_SECS is disabled, with the reason.
CREATE TABLE webhook_endpoints (
    id                         uuid PRIMARY KEY,
    url                        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events                     text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
    description                text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    enabled                    boolean NOT NULL DEFAULT true,
    disabled_reason            text CHECK (length(disabled_reason) <= 500),
    secret                     bytea NOT NULL,
    previous_secret            bytea,
    previous_secret_expires_at timestamptz,
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT webhook_endpoints_previous_secret_expires
        CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL)),
    CONSTRAINT webhook_endpoints_disabled_with_reason
        CHECK (enabled OR disabled_reason IS NOT NULL)
);

CREATE INDEX webhook_endpoints_listed ON webhook_endpoints (created_at, id);

CREATE TYPE webhook_delivery_status AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED');

-- A delivery of one event to one endpoint; its id (UUID v5 of both) is the `webhook-id` every
-- attempt, retry and replay carries. `payload` is the exact body signed. `scheduled_attempts`
-- counts the attempts of the current schedule (a replay starts it anew), `attempt_count` all
-- of them. `ticket` names the one message in WEBHOOKS that drives it: a retry or replay
-- replaces it, and a message with an older ticket is dropped. `leased_until` keeps two workers
-- from attempting it at once.
CREATE TABLE webhook_deliveries (
    id                 uuid PRIMARY KEY,
    endpoint_id        uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id           uuid NOT NULL,
    event_type         text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    payload            text NOT NULL,
    status             webhook_delivery_status NOT NULL DEFAULT 'PENDING',
    scheduled_attempts integer NOT NULL DEFAULT 0 CHECK (scheduled_attempts >= 0),
    attempt_count      integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    ticket             uuid NOT NULL,
    next_attempt_at    timestamptz,
    leased_until       timestamptz,
    last_error         text CHECK (length(last_error) <= 2000),
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT webhook_deliveries_due_while_pending
        CHECK ((status = 'PENDING') = (next_attempt_at IS NOT NULL))
);

CREATE INDEX webhook_deliveries_listed ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE status <> 'PENDING';

-- One attempt: when, how long, and the answer (status code and the first KiB of its body) or
-- the error that stood for one (a timeout, a refused address, a reset connection).
CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    status_code   smallint CHECK (status_code BETWEEN 100 AND 999),
    error         text CHECK (length(error) <= 2000),
    response_body text CHECK (length(response_body) <= 1024),
    CONSTRAINT webhook_attempts_answer_or_error CHECK ((status_code IS NULL) <> (error IS NULL))
);

CREATE INDEX webhook_attempts_of_delivery ON webhook_attempts (delivery_id, id);
