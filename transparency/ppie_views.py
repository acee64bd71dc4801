"""The PPIE members' work page: lay summaries to read, questions to moderate, what was released.

Here, above the registry, because it shows the public questions and published results too; the
reviews themselves are `portal.ppie`.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal import permissions, ppie
from portal.models import PPIEReview, Project
from portal.views.helpers import domain_errors_as_messages
from transparency import questions, records


@login_required
def ppie_home(request):
    permissions.check_use_ppie_page(request.user)
    waiting, with_researcher = ppie.projects_to_review(request.user)
    return render(
        request,
        "portal/ppie.html",
        {
            "waiting": waiting,
            "with_researcher": with_researcher,
            "questions": questions.questions_to_moderate(request.user).count(),
            "results": records.all_published_results(),
            "outcomes": PPIEReview.Outcome.choices,
        },
    )


@login_required
@require_POST
@domain_errors_as_messages
def ppie_review(request, pk):
    project = get_object_or_404(Project, pk=pk)
    review = ppie.record(
        project, request.POST.get("outcome", ""), request.POST.get("comment", ""), by=request.user
    )
    if review.outcome == PPIEReview.Outcome.CLEAR:
        messages.success(request, f"Marked {project.identifier}'s lay summary clear for the public.")
    else:
        messages.success(
            request, f"Asked {project.identifier}'s team for plainer words. They see your comment."
        )
    return redirect("ppie_home")
