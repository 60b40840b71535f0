-- The console reads the sessions that changed lately (live values, today's revenue) every
-- second: by the time of their last change, without reading the whole table.
CREATE INDEX reservations_by_update ON reservations (updated_at);
