"""The HTTP status of each protocol error code, for the admin API and its OpenAPI text."""

STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "not_live": 409,
    "insufficient_funds": 409,
    "out_of_stock": 409,
    "limit_exceeded": 409,
    "rate_limited": 429,
    "idempotency_conflict": 409,
    "invalid_receipt": 402,
    "unavailable": 503,
    "internal": 500,
    "banned": 403,  # -- moderation --
    "muted": 403,
    "slow_mode": 429,
    "box_closed": 409,  # -- treasure box --
    "age_restricted": 403,  # -- age gates --
}
