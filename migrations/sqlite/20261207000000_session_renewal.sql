-- Short access tokens renewed from the session: the refresh cookie names the session and a
-- generation; a renewal presenting the current generation moves it on by one (rotation), the
-- one before stays good for a short grace after `rotated_at_ms` (tabs renewing at once), and
-- an older one ends the session (a copied cookie). Times are Unix milliseconds.
ALTER TABLE sessions ADD COLUMN refresh_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN rotated_at_ms INTEGER NOT NULL DEFAULT 0;
