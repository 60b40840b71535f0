"""Storage: the SQLite database, its migrations, and the OCPP-side tables."""
