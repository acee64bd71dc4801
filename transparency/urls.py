"""The public transparency pages, mounted at /public/ (no sign-in; MFA middleware leaves them open)."""

from django.urls import path, re_path

from transparency import moderation_views as moderation
from transparency import views

urlpatterns = [
    path("", views.home, name="public_home"),
    path("projects/", views.project_list, name="public_project_list"),
    path("projects/<str:identifier>/", views.project_detail, name="public_project_detail"),
    path("projects/<str:identifier>/ask/", views.question_ask, name="public_question_ask"),
    path("projects/<str:identifier>/ask/sent/", views.question_sent, name="public_question_sent"),
    path("outputs/<int:pk>/<str:name>", views.output_download, name="public_output_download"),
    path("tres/", views.tre_list, name="public_tre_list"),
    path("tres/<slug:slug>/", views.tre_detail, name="public_tre_detail"),
    path("statistics/", views.statistics, name="public_statistics"),
    path("data-use-register/", views.data_use_register, name="public_dur"),
    re_path(
        r"^data-use-register\.(?P<fmt>csv|json)$",
        views.data_use_register_download,
        name="public_dur_download",
    ),
    path("audit/", views.audit_digests, name="public_audit"),
    path("audit/digests.json", views.audit_digests_json, name="public_audit_digests"),
    path("glossary/", views.glossary, name="public_glossary"),
    # Officers (signed in, with MFA) moderate questions here.
    path("questions/moderate/", moderation.moderation_queue, name="public_questions_moderation"),
    path("questions/<int:pk>/moderate/", moderation.moderate, name="public_question_moderate"),
]
