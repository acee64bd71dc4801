"""The public page cache: every public page is cached under a prefix that a change retires."""

from django.conf import settings
from django.core.cache import cache

# --- The public page cache -----------------------------------------------------------------

_GENERATION_KEY = "public-pages:generation"


def page_cache_seconds():
    return getattr(settings, "PORTAL_PUBLIC_CACHE_SECONDS", 300)


def cache_prefix():
    """The key prefix of cached public pages; a new one after `invalidate_public_pages`."""
    cache.add(_GENERATION_KEY, 1, timeout=None)
    return f"public-pages.{cache.get(_GENERATION_KEY, 1)}"


def invalidate_public_pages():
    """Retire every cached public page at once (registry changes otherwise show within the TTL)."""
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 2, timeout=None)
