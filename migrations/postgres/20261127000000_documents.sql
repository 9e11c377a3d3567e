-- The PostgreSQL twin of migrations/sqlite; `rowid` stands in for SQLite's implicit one,
-- which orders rows created in the same millisecond.

-- Users sign in with an email and an argon2 password hash; memberships say which projects
-- each user may see (they become the `projects` claim of the user's token).
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Emails are unique without regard to case, as SQLite's COLLATE NOCASE makes them.
CREATE UNIQUE INDEX users_by_email ON users (lower(email));

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id)
);

-- A document and its processing state. `chunks` is 0 until the embedding job has split it;
-- `embedded_chunks` counts the chunks whose vector is stored.
CREATE TABLE documents (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'embedding', 'ready', 'failed')),
    chunks BIGINT NOT NULL DEFAULT 0,
    embedded_chunks BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX documents_by_project ON documents (project_id, created_at);

-- A document's chunks in order; `embedding` (little-endian f32s) is NULL until embedded,
-- and is written at most once.
CREATE TABLE chunks (
    id TEXT PRIMARY KEY NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    text TEXT NOT NULL,
    embedding BYTEA,
    embedded_at TEXT,
    UNIQUE (document_id, position)
);

CREATE INDEX chunks_by_project ON chunks (project_id);

-- Background work. A worker claims a job by moving it to `running` with a lease; a job whose
-- lease ran out (its worker died) can be claimed again. Deleting the document deletes its
-- jobs, which is how a running job learns it was cancelled.
CREATE TABLE jobs (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('embedding', 'extraction')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    claims BIGINT NOT NULL DEFAULT 0,
    lease_until_ms BIGINT,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX jobs_by_status ON jobs (status, created_at);
CREATE INDEX jobs_by_document ON jobs (document_id);

-- What extraction derived from a document: named entities and their co-occurrences.
CREATE TABLE graph_objects (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('entity', 'relation')),
    name TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX graph_objects_by_document ON graph_objects (document_id);
