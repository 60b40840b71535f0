"""The HTTP side: health check now; the management API and the driver's pages build on it."""
