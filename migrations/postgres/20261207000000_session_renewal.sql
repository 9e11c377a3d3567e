-- The PostgreSQL twin of migrations/sqlite/20261207000000_session_renewal.sql.

ALTER TABLE sessions ADD COLUMN refresh_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN rotated_at_ms BIGINT NOT NULL DEFAULT 0;
