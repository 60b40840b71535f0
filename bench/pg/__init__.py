"""PostgreSQL for benchmarks and tests: a throwaway cluster, and the driver measurement."""
