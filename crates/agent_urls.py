"""URLs of the TRE-agent API (/api/v1/agent/) and of the agent management pages."""

urlpatterns: list = []
