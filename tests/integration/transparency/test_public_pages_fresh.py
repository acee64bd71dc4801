"""Public pages are cached whole, and a change to what they show retires the cached copies at once."""

import pytest
from django.core.cache import cache
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_statistics_show_a_new_request_at_once(client, new_job):
    new_job("released", title="First request")
    before = client.get(reverse("public_statistics"))
    assert before.status_code == 200
    assert client.get(reverse("public_statistics")).content == before.content  # cached: the same page again
    new_job("released", title="Second request")
    after = client.get(reverse("public_statistics"))
    assert after.status_code == 200
    assert after.content != before.content


def test_a_page_is_served_from_the_cache_while_nothing_changes(client, new_job, django_assert_num_queries):
    new_job("released")
    client.get(reverse("public_statistics"))
    with django_assert_num_queries(0):
        assert client.get(reverse("public_statistics")).status_code == 200
