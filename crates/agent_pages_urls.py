"""URLs of the pages where a TRE's officers manage its agents."""

from django.urls import path

from crates import agent_views

urlpatterns = [
    path("tres/<slug:slug>/agents/", agent_views.tre_agents, name="tre_agents"),
    path("agents/<int:pk>/rotate/", agent_views.agent_rotate, name="agent_rotate"),
    path("agents/<int:pk>/revoke/", agent_views.agent_revoke, name="agent_revoke"),
]
