"""A small toolkit for JSON APIs on aiohttp: routes declared with their pydantic models,
one error shape, cursor pagination, and the OpenAPI 3.1 document generated from those
same declarations, so that the document cannot drift from the code.

Shared by the OCPP side's management API and the payment API; it knows neither.
"""
