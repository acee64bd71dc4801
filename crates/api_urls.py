"""The requests API (/api/v1/requests/), included by portal/api/urls.py by name."""

from django.urls import path

from crates import api as crates_api

urlpatterns = [
    path("v1/requests/", crates_api.RequestListCreate.as_view(), name="api_request_list"),
    path("v1/requests/build/", crates_api.RequestBuild.as_view(), name="api_request_build"),
    path("v1/requests/<int:pk>/", crates_api.RequestDetail.as_view(), name="api_request_detail"),
    path("v1/requests/<int:pk>/versions/", crates_api.RequestResubmit.as_view(), name="api_request_resubmit"),
]
