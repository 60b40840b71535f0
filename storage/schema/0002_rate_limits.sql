-- Limits that hold cluster-wide (storage/limits.py): for each scope (what is limited:
-- driver session starts, failed charger logins) and subject (a client address), the
-- subject's current window, opened at its first counted attempt, and the attempts counted
-- in it. One row per subject; rows whose window has ended are deleted now and then by the
-- nodes that count.
CREATE TABLE rate_limits (
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    window_start TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
);

-- The sweep of ended windows.
CREATE INDEX rate_limits_by_start ON rate_limits (scope, window_start);
