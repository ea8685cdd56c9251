"""The scoring contract, without a server: API key, request checks and the OpenAPI document."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from deployment.serving.openapi import openapi_document
from deployment.serving.score_request import RequestRejected, check_api_key, parse_score_request


def test_without_a_configured_key_every_caller_is_let_in():
    check_api_key(None, None)


@pytest.mark.parametrize("header", ["Bearer k3y", "bearer k3y", "Bearer  k3y "])
def test_the_key_is_accepted_as_a_bearer_token(header):
    check_api_key(header, "k3y")


@pytest.mark.parametrize("header", [None, "", "k3y", "Basic k3y", "Bearer k3", "Bearer k3yy"])
def test_anything_else_is_unauthorized(header):
    with pytest.raises(RequestRejected) as rejected:
        check_api_key(header, "k3y")
    assert (rejected.value.status, rejected.value.kind) == (401, "unauthorized")
    assert "k3y" not in str(rejected.value)


def test_a_good_request_is_returned_as_is():
    assert parse_score_request(b'{"article": "Acme rises\\n\\nAcme shares rose."}', "application/json",
                               1000).article == "Acme rises\n\nAcme shares rose."


def test_a_body_that_is_not_utf8_is_a_bad_request():
    with pytest.raises(RequestRejected, match="not valid JSON") as rejected:
        parse_score_request(b'{"article": "\xff\xfe"}', "application/json", 1000)
    assert rejected.value.status == 400


def test_an_article_with_a_lone_surrogate_is_refused_as_an_invalid_article():
    with pytest.raises(RequestRejected, match="lone surrogate") as rejected:
        parse_score_request(b'{"article": "Acme shares \\ud800 rose sharply."}', "application/json", 1000)
    assert (rejected.value.status, rejected.value.kind) == (422, "invalid_article")


@pytest.mark.parametrize("auth", [True, False])
def test_the_openapi_document_is_valid_and_states_the_limits(auth):
    document = openapi_document(max_chars=1234, max_request_bytes=5678, auth=auth)
    validate(document)
    score = document["paths"]["/score"]["post"]
    assert document["components"]["schemas"]["ScoreRequest"]["properties"]["article"]["maxLength"] == 1234
    assert "5,678 bytes" in score["responses"]["413"]["description"]
    assert ("security" in score) is auth
    assert ("security" in document["paths"]["/api/analyses"]["get"]) is auth
    assert set(document["paths"]) == {"/score", "/feedback", "/api/analyses", "/api/analyses/{trace_id}", "/metrics",
                                      "/health", "/version"}
    assert {"title", "business_info", "trace_id"} <= set(document["components"]["schemas"]["ArticleInfo"]["properties"])
    business = document["components"]["schemas"]["BusinessInfo"]["properties"]
    assert {"confidence", "direction_probabilities"} <= set(business)
