-- Projects scope everything else: documents, events and access all belong to one.
-- The PostgreSQL twin of migrations/sqlite: same tables, columns and constraints.
CREATE TABLE projects (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
        DEFAULT (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
);
