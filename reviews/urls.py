from django.urls import path

from reviews import views

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
]
