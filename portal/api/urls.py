from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from crates import api as crates_api
from portal.api import views
from reviews import api as reviews_api

urlpatterns = [
    path("v1/agent/", include("crates.agent_urls")),  # first: the most frequent requests
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api_docs"),
    path("v1/me/", views.MeView.as_view(), name="api_me"),
    path("v1/tres/", views.TREList.as_view(), name="api_tre_list"),
    path("v1/projects/", views.ProjectList.as_view(), name="api_project_list"),
    path("v1/projects/<str:identifier>/", views.ProjectDetail.as_view(), name="api_project_detail"),
    path("v1/reviews/", reviews_api.ReviewQueue.as_view(), name="api_review_queue"),
    path("v1/jobs/<int:pk>/", reviews_api.JobDetail.as_view(), name="api_job_detail"),
    path("v1/jobs/<int:pk>/start/", reviews_api.StartReview.as_view(), name="api_job_start"),
    path("v1/jobs/<int:pk>/decisions/", reviews_api.Decide.as_view(), name="api_job_decide"),
    path("v1/jobs/<int:pk>/messages/", reviews_api.PostMessage.as_view(), name="api_job_message"),
    path("v1/jobs/<int:pk>/cancel/", reviews_api.Cancel.as_view(), name="api_job_cancel"),
    path("v1/jobs/<int:pk>/outputs/", reviews_api.JobOutputs.as_view(), name="api_job_outputs"),
    path(
        "v1/requests/<int:pk>/combined/", reviews_api.RequestCombined.as_view(), name="api_request_combined"
    ),
    path("v1/combined/<int:pk>/", reviews_api.CombinedDetail.as_view(), name="api_combined_detail"),
    path("v1/combined/<int:pk>/decision/", reviews_api.DecideCombined.as_view(), name="api_combined_decide"),
    path("v1/outputs/<int:pk>/votes/", reviews_api.VoteOnOutput.as_view(), name="api_output_vote"),
    path("v1/outputs/<int:pk>/release/", reviews_api.ReleaseOutput.as_view(), name="api_output_release"),
    path("v1/outputs/<int:pk>/describe/", reviews_api.DescribeOutput.as_view(), name="api_output_describe"),
    path("v1/requests/", crates_api.RequestListCreate.as_view(), name="api_request_list"),
    path("v1/requests/<int:pk>/", crates_api.RequestDetail.as_view(), name="api_request_detail"),
    path("v1/requests/<int:pk>/versions/", crates_api.RequestResubmit.as_view(), name="api_request_resubmit"),
]
