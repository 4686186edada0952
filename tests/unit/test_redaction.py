"""Secrets never reach a record: what ``chaoslab.redaction`` masks, and what it leaves alone."""

from __future__ import annotations

from typing import Any

import pytest

from chaoslab.redaction import MASK, redact, redact_text

TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.payload.sig"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", "Authorization: ***"),
        (f'{{"authorization": "Bearer {TOKEN}"}}', '{"authorization": "***"}'),
        (f"sent Bearer {TOKEN} to Prometheus", "sent Bearer *** to Prometheus"),
        ("Basic dXNlcjpwYXNzd29yZDEyMw== rejected", "Basic *** rejected"),
        ("https://ops:hunter2@prometheus:9090/api/v1/query", "https://ops:***@prometheus:9090/api/v1/query"),
        ("check the bearer token (prometheus_token)", "check the bearer token (prometheus_token)"),
        ("basic retries with backoff", "basic retries with backoff"),
        ("https://prometheus:9090/graph", "https://prometheus:9090/graph"),
        # Any case, inside documents too: each pattern is tried when its word is there.
        (f"AUTHORIZATION = BEARER {TOKEN}", "AUTHORIZATION = ***"),
        (f"probe sent bEaReR {TOKEN}", "probe sent bEaReR ***"),
        (f"HTTPS://OPS:hunter2@PROMETHEUS/x BASIC {TOKEN}", "HTTPS://OPS:***@PROMETHEUS/x BASIC ***"),
    ],
)
def test_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_known_secret_values_are_masked_anywhere() -> None:
    assert redact_text("token s3cr3t-value leaked in an error", secrets=["s3cr3t-value"]) == (
        "token *** leaked in an error"
    )
    assert redact_text("abc is too short to be a secret", secrets=["abc", None, ""]) == (
        "abc is too short to be a secret"
    )


def test_a_chaos_toolkit_journal() -> None:
    journal: dict[str, Any] = {
        "experiment": {
            "configuration": {"prometheus_url": "https://ops:pw12@prom:9090", "chaoslab_target": "sandbox"},
            "secrets": {
                "prometheus": {"prometheus_token": TOKEN, "from_env": {"type": "env", "key": "PROM_TOKEN"}},
                "k8s": {"KUBERNETES_API_KEY": "k8s-key"},
            },
            "steady-state-hypothesis": {
                "probes": [{"provider": {"secrets": ["prometheus"], "arguments": {}}}],
            },
        },
        "run": [{"output": {"pods": ["shop/payment-1"], "reason": f"401 with Bearer {TOKEN}"}}],
        "status": "completed",
    }
    clean = redact(journal)
    assert clean["experiment"]["secrets"] == {
        "prometheus": {"prometheus_token": MASK, "from_env": {"type": "env", "key": "PROM_TOKEN"}},
        "k8s": {"KUBERNETES_API_KEY": MASK},
    }
    assert clean["experiment"]["configuration"]["prometheus_url"] == "https://ops:***@prom:9090"
    probe = clean["experiment"]["steady-state-hypothesis"]["probes"][0]
    assert probe["provider"]["secrets"] == ["prometheus"]  # scope names, not secrets
    assert clean["run"][0]["output"] == {"pods": ["shop/payment-1"], "reason": "401 with Bearer ***"}
    assert clean["status"] == "completed"
    assert journal["experiment"]["secrets"]["prometheus"]["prometheus_token"] == TOKEN  # a copy


def test_kubeconfig_credentials() -> None:
    kubeconfig = {
        "users": [{"name": "admin", "user": {
            "client-certificate-data": "LS0tLS1CRUdJTi", "client-key-data": "LS0tLS1CRUdJTiBSU0",
            "token": "abcdef123456", "password": "pw-123456",
            "exec": {"command": "aws", "args": ["eks", "get-token"]},
        }}],
        "clusters": [{"name": "kind", "cluster": {"server": "https://127.0.0.1:6443"}}],
    }  # fmt: skip
    user = redact(kubeconfig)["users"][0]["user"]
    secret_keys = ("client-certificate-data", "client-key-data", "token", "password")
    assert {k: user[k] for k in secret_keys} == dict.fromkeys(secret_keys, MASK)
    assert user["exec"] == {"command": "aws", "args": ["eks", "get-token"]}
    assert redact(kubeconfig)["clusters"] == kubeconfig["clusters"]


def test_what_is_not_a_secret_stays() -> None:
    doc = {"alert": "CartErrors", "threshold": 0.05, "prometheus_verify_tls": True, "max_tokens": 3,
           "token": None, "tuple": ("a", "b"), "points": [[1.0, 0.5]]}  # fmt: skip
    assert redact(doc) == doc
