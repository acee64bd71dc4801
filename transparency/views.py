"""The public transparency pages: no sign-in, no script needed, cached for everyone.

Each view asks the transparency modules (records, statistics, digests, questions, dur) for public
records and renders them; none of them touches a model instance directly. Pages are cached under a
prefix that `page_cache.invalidate_public_pages` changes, so moderated answers and new digests show
at once and registry changes within the TTL.
"""

from functools import wraps
from urllib.parse import urlencode

from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import cache_page
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from transparency import digests, dur, page_cache, questions, records
from transparency import statistics as public_statistics


def public_page(view):
    """Serve the page from the cache when there; key: the prefix of the day's generation and the URL."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        cached = cache_page(page_cache.page_cache_seconds(), key_prefix=page_cache.cache_prefix())(view)
        return cached(request, *args, **kwargs)

    return require_safe(wrapper)


def _render(request, template, section, context=None, status=200):
    return render(request, template, {"section": section, **(context or {})}, status=status)


@public_page
def home(request):
    return _render(request, "public/home.html", "home", records.overview())


@public_page
def project_list(request):
    query = request.GET.get("q", "").strip()
    page = records.project_page(query=query, page=request.GET.get("page"))
    return _render(
        request,
        "public/project_list.html",
        "projects",
        {"page": page, "q": query, "query": urlencode({"q": query}) if query else ""},
    )


@public_page
def project_detail(request, identifier):
    project = records.public_project(identifier)
    if project is None:
        raise Http404("No approved project has that identifier.")
    return _render(request, "public/project_detail.html", "projects", {"project": project})


@require_http_methods(["GET", "POST"])
def question_ask(request, identifier):
    """Not cached: the form carries a CSRF token and a fresh time-to-submit token."""
    project = records.project_for_questions(identifier)
    if project is None:
        raise Http404("No approved project has that identifier.")
    status = 200
    if request.method == "POST":
        allowed = questions.allow_question_from(questions.client_ip(request))
        form = questions.QuestionForm(request.POST, identifier=project.identifier, blocked=not allowed)
        if form.is_valid():
            if not form.is_spam:  # a robot filled the trap: it is told "sent" and nothing is kept
                questions.submit_question(
                    project,
                    question=form.cleaned_data["question"],
                    name=form.cleaned_data["name"],
                    email=form.cleaned_data["email"],
                )
            return redirect("public_question_sent", identifier=project.identifier)
        status = 429 if not allowed else 400
    else:
        form = questions.QuestionForm(identifier=project.identifier)
    return _render(
        request, "public/question_form.html", "projects", {"form": form, "project": project}, status=status
    )


@require_GET
def question_sent(request, identifier):
    project = records.project_for_questions(identifier)
    if project is None:
        raise Http404("No approved project has that identifier.")
    return _render(request, "public/question_sent.html", "projects", {"project": project})


@require_safe
def output_download(request, pk, name):
    """A released output the project published: a plain download, no sign-in."""
    output = records.public_output_file(pk, name)
    if output is None:
        raise Http404("No published output has that address.")
    response = FileResponse(output.stored.open("rb"), as_attachment=True, filename=output.name)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@public_page
def tre_list(request):
    return _render(request, "public/tre_list.html", "tres", {"tres": records.public_tres()})


@public_page
def tre_detail(request, slug):
    tre = records.public_tre(slug)
    if tre is None:
        raise Http404("No TRE has that name.")
    page = records.project_page(tre_slug=slug, page=request.GET.get("page"))
    return _render(request, "public/tre_detail.html", "tres", {"tre": tre, "page": page})


@public_page
def statistics(request):
    return _render(request, "public/statistics.html", "statistics", {"stats": public_statistics.statistics()})


@public_page
def data_use_register(request):
    entries, _ = dur.register_entries()
    return _render(
        request,
        "public/data_use_register.html",
        "dur",
        {
            "entry_count": len(entries),
            "columns": [(column, dur.COLUMN_HELP[column.field]) for column in dur.COLUMNS],
        },
    )


_DOWNLOAD_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@public_page
def data_use_register_download(request, fmt):
    text, _ = dur.export(fmt)
    response = HttpResponse(text, content_type=_DOWNLOAD_TYPES[fmt])
    filename = f"data-use-register-{timezone.localdate():%Y-%m-%d}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@public_page
def audit_digests(request):
    check, form = None, digests.DigestCheckForm(request.GET or None)
    if form.is_bound and form.is_valid():
        check = digests.check_digest(form.cleaned_data["count"], form.cleaned_data["hash"])
    return _render(
        request,
        "public/audit.html",
        "audit",
        {
            "page": digests.digest_page(request.GET.get("page")),
            "latest": digests.latest_digest(),
            "form": form,
            "check": check,
        },
    )


@public_page
def audit_digests_json(request):
    published = [
        {
            "date": d.date.isoformat(),
            "count": d.count,
            "hash": d.hash,
            "published_at": d.published_at.isoformat(timespec="seconds"),
        }
        for d in digests.all_digests()
    ]
    return JsonResponse(
        {"algorithm": "sha256", "digests": published},
        json_dumps_params={"indent": 2},
        headers={"Content-Disposition": 'inline; filename="audit-digests.json"'},
    )


@public_page
def glossary(request):
    return _render(request, "public/glossary.html", "glossary")
