"""What the requests layer adds to the "To do" page: the researcher's requests and jobs, failures first."""

from django.db.models import Prefetch, Q

from crates import explain
from crates.models import Job, Request
from portal.models import Membership
from portal.todo import Section

SHOWN = 10


def researcher_section(user):
    """My requests (submitted by me or in my projects) with each job's state in words; failures on top."""
    member_of = Membership.objects.filter(person=user).exclude(status=Membership.Status.WITHDRAWN)
    requests = list(
        Request.objects.filter(Q(submitter=user) | Q(project__in=member_of.values("project_id")))
        .distinct()
        .select_related("project")
        .prefetch_related(
            "versions",
            Prefetch("jobs", queryset=Job.objects.select_related("tre", "lease").order_by("tre__name")),
        )
        .order_by("-updated_at", "-pk")[: SHOWN + 1]
    )
    if not requests:
        return None
    rows, failures = [], []
    for req in requests[:SHOWN]:
        jobs = list(req.jobs.all())
        for job in jobs:
            if job.status == Job.Status.FAILED:
                failures.append((job, explain.failure(job, lease=getattr(job, "lease", None))))
        rows.append({"request": req, "jobs": [(job, explain.NOW.get(job.status, "")) for job in jobs]})
    return Section(
        "crates/includes/dashboard_researcher.html",
        {"rows": rows, "failures": failures, "more": len(requests) > SHOWN},
    )
