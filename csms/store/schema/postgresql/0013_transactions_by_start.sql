-- The console's overview adds up the energy of the charges of the last two days by their
-- start, without reading the whole table.
CREATE INDEX transactions_by_start ON transactions (started_at);
