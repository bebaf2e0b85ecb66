"""The admin HTTP API, its OpenAPI description and the HTTP connection guard."""
