-- Limits that hold cluster-wide (storage/limits.py): the same table and rules as
-- ../0002_rate_limits.sql.
CREATE TABLE rate_limits (
    scope        TEXT COLLATE "C" NOT NULL,
    subject      TEXT COLLATE "C" NOT NULL,
    window_start TEXT COLLATE "C" NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (scope, subject)
);

CREATE INDEX rate_limits_by_start ON rate_limits (scope, window_start);
