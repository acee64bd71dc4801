"""PPIE oversight pages, mounted at /ppie/ (signed-in PPIE members)."""

from django.urls import path

from transparency import ppie_views

urlpatterns = [
    path("", ppie_views.ppie_home, name="ppie_home"),
    path("projects/<int:pk>/", ppie_views.ppie_review, name="ppie_review"),
]
