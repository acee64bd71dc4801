from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.api import views, webhooks

# The apps above the registry contribute their own API URL modules, included by name (the registry
# never imports them; see docs/adr/0005-layers.md).
urlpatterns = [
    path("v1/agent/", include("crates.agent_urls")),  # first: the most frequent requests
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api_docs"),
    path("v1/me/", views.MeView.as_view(), name="api_me"),
    path("v1/tres/", views.TREList.as_view(), name="api_tre_list"),
    path("v1/projects/", views.ProjectList.as_view(), name="api_project_list"),
    path("v1/projects/<str:identifier>/", views.ProjectDetail.as_view(), name="api_project_detail"),
    path("v1/webhooks/", webhooks.WebhookList.as_view(), name="api_webhook_list"),
    path("v1/webhooks/<int:pk>/", webhooks.WebhookDetail.as_view(), name="api_webhook_detail"),
    path("v1/webhooks/<int:pk>/enable/", webhooks.WebhookEnable.as_view(), name="api_webhook_enable"),
    path("v1/webhooks/<int:pk>/ping/", webhooks.WebhookPing.as_view(), name="api_webhook_ping"),
    path("v1/webhooks/<int:pk>/deliveries/", webhooks.DeliveryList.as_view(), name="api_webhook_deliveries"),
    path(
        "v1/webhook-deliveries/<int:pk>/replay/", webhooks.DeliveryReplay.as_view(), name="api_webhook_replay"
    ),
    path("", include("reviews.api_urls")),
    path("", include("crates.api_urls")),
]
