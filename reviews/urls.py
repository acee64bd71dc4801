from django.urls import path

from reviews import output_views, views

urlpatterns = [
    path("tres/<slug:slug>/reviews/", views.review_queue, name="review_queue"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/start/", views.job_start_review, name="job_start_review"),
    path("jobs/<int:pk>/hand-back/", views.job_hand_back, name="job_hand_back"),
    path("jobs/<int:pk>/steps/<str:step>/", views.job_decide, name="job_decide"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/messages/", views.job_message, name="job_message"),
    path("jobs/<int:pk>/certificate.pdf", views.job_certificate, name="job_certificate"),
    path("jobs/suspended/", views.suspended_jobs, name="suspended_jobs"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("jobs/<int:pk>/outputs/", output_views.job_outputs, name="job_outputs"),
    path(
        "jobs/<int:pk>/outputs/certificate.pdf", output_views.release_certificate, name="release_certificate"
    ),
    path("jobs/<int:pk>/outputs/published.zip", output_views.published_crate, name="published_crate"),
    path("outputs/", output_views.output_queue, name="output_queue"),
    path("outputs/<int:pk>/", output_views.output_detail, name="output_detail"),
    path("outputs/<int:pk>/download/", output_views.output_download, name="output_download"),
    path("outputs/<int:pk>/vote/", output_views.output_vote, name="output_vote"),
    path("outputs/<int:pk>/release/", output_views.output_release, name="output_release"),
    path("outputs/<int:pk>/describe/", output_views.output_describe, name="output_describe"),
    path("outputs/<int:pk>/withdraw/", output_views.output_withdraw, name="output_withdraw"),
    path("outputs/<int:pk>/publish/", output_views.output_publish, name="output_publish"),
    path("outputs/<int:pk>/unpublish/", output_views.output_unpublish, name="output_unpublish"),
    path("requests/<int:pk>/combined/", output_views.request_combined, name="request_combined"),
    path("combined/<int:pk>/", output_views.combined_detail, name="combined_detail"),
    path("combined/<int:pk>/download/", output_views.combined_download, name="combined_download"),
]
