"""The review and outputs API (/api/v1/reviews/, jobs/, outputs/, combined/), included by portal/api/urls.py by name."""

from django.urls import path

from reviews import api as reviews_api

urlpatterns = [
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
]
