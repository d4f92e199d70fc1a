"""The HTTP API fuzzed from its own OpenAPI description (schemathesis): every operation,
with data generated from its schema, against a real server on 127.0.0.1 serving a real
conflated output; no request may make it fail (a 5xx) or stop it serving, and every
answer must be what the description says it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from .test_api import TOKEN, get, serving

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def base(conflated: Path) -> Iterator[str]:
    with serving(conflated, TOKEN) as url:
        yield url


def test_no_request_makes_the_server_fail(base: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /search",
        "GET /places",
        "GET /places/{place_id}",
        "POST /labels",
        "POST /match",
    }
    for operation in operations:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code < 500, (case.path, case.query, case.body, response.text)
            # What it answers is what the description says it answers (where it says).
            case.validate_response(response, checks=[response_schema_conformance])

        fuzz()
    assert get(base, "/health")[0] == 200
