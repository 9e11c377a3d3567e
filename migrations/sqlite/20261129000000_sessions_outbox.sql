-- Server-side sessions: a login creates one and its token names it (`sid`); logging out,
-- `docpulse admin end-sessions` and removing a membership end it, and a token of an ended
-- session is refused. Times are Unix milliseconds.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_end ON sessions (ended_at_ms);

-- The transactional outbox: every change writes its events here in its own transaction, and
-- the relay of the instance that wrote them (`owner`) publishes them in order and deletes
-- them; a row waits while an older row of its project belongs to another owner. An owner
-- whose lease ran out (its instance died) has its rows adopted by another. No secondary index:
-- the table holds only rows not yet published, read in id order, and an index would cost
-- every change's commit more page writes.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    project_id TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE outbox_owners (
    owner TEXT PRIMARY KEY NOT NULL,
    lease_until_ms INTEGER NOT NULL
);
