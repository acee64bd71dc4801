"""`/healthz` tells a load balancer whether this process reaches its database, cache and storage."""

import pytest
from django.urls import reverse

from portal.views import health

pytestmark = pytest.mark.django_db


def test_healthy_without_sign_in_and_never_cached(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "storage": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_a_failing_dependency_is_named_but_not_explained(client, monkeypatch, caplog):
    def broken():
        raise ConnectionError("redis://secret-host:6379 refused")

    monkeypatch.setitem(health.CHECKS, "cache", broken)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "database": "ok", "cache": "failing", "storage": "ok"}
    assert "secret-host" not in response.content.decode()
    assert "health check cache failed" in caplog.text


def test_only_safe_methods(client):
    assert client.post(reverse("healthz")).status_code == 405
