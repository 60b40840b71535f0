-- Operator console logins: the cookie's token is kept only as its SHA-256 digest, with the
-- user it belongs to, the form token (CSRF) of that login, and when it ends.
CREATE TABLE console_sessions (
    digest     TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_name);
