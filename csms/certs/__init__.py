"""The operator CA for chargers' client certificates (OCPP 1.6 security profile 3)."""
