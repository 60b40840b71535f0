"""The OCPP 1.6J side: WebSocket endpoint, sessions, message handlers, commands."""
