-- The PostgreSQL twin of migrations/sqlite/20261129000000_sessions_outbox.sql.

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_end ON sessions (ended_at_ms);

CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner TEXT NOT NULL,
    project_id TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE outbox_owners (
    owner TEXT PRIMARY KEY NOT NULL,
    lease_until_ms BIGINT NOT NULL
);
