"""Test time constants, scaled by LIVESRV_TEST_TIME_SCALE on slow machines."""

import os

SCALE = float(os.environ.get("LIVESRV_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * SCALE
