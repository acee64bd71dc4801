from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from crates import api as crates_api
from portal.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api_docs"),
    path("v1/me/", views.MeView.as_view(), name="api_me"),
    path("v1/tres/", views.TREList.as_view(), name="api_tre_list"),
    path("v1/projects/", views.ProjectList.as_view(), name="api_project_list"),
    path("v1/projects/<str:identifier>/", views.ProjectDetail.as_view(), name="api_project_detail"),
    path("v1/agent/", include("crates.agent_urls")),
    path("v1/requests/", crates_api.RequestListCreate.as_view(), name="api_request_list"),
    path("v1/requests/<int:pk>/", crates_api.RequestDetail.as_view(), name="api_request_detail"),
    path("v1/requests/<int:pk>/versions/", crates_api.RequestResubmit.as_view(), name="api_request_resubmit"),
]
