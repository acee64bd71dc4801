"""URLs of the TRE-agent API, mounted at /api/v1/agent/ (see docs/agent-api.md)."""

from django.urls import path

from crates import agent_api

urlpatterns = [
    path("claim/", agent_api.ClaimView.as_view(), name="api_agent_claim"),
    path("reconcile/", agent_api.ReconcileView.as_view(), name="api_agent_reconcile"),
    path("jobs/<int:pk>/heartbeat/", agent_api.HeartbeatView.as_view(), name="api_agent_heartbeat"),
    path("jobs/<int:pk>/status/", agent_api.StatusView.as_view(), name="api_agent_status"),
    path("jobs/<int:pk>/crate/", agent_api.CrateView.as_view(), name="api_agent_crate"),
    path("jobs/<int:pk>/workflow/", agent_api.WorkflowView.as_view(), name="api_agent_workflow"),
    path("jobs/<int:pk>/results/", agent_api.ResultsView.as_view(), name="api_agent_results"),
]
