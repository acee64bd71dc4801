"""URLs of the pages where a TRE's officers manage its agents."""

urlpatterns: list = []
