"""Portal-side steps of the fault tests, run as `python -m tests.faults.helper COMMAND ...` in a subprocess.

The test process never opens the portal's database through Django: it starts the portal's processes
and asks this helper (with DATABASE_URL and REDIS_URL of the test) to seed the federation, to write
results crates and to hand tasks to the django-q2 clusters exactly as the portal does.

    seed --jobs N --agents a,b --out F   the cast, TRE A, a project, the approved cohort-count workflow,
                                         N queued jobs and one token per agent, as JSON in F
    results-crate --job ID --dest ZIP --files K --rows R
                                         a results crate for the job (as the reference agent writes it)
                                         with K CSV outputs of R rows each; prints its SHA-256
    enqueue FUNC [ARG...] [--times N]    async_task(FUNC, *ARGS), N times, on the clusters' queue
                                         (integer ARGs); prints the task ids
    marks --count N [--seconds S]        N marker tasks (tests.faults.tasks.mark) keyed 0..N-1
    submit --count N --out F             N requests submitted through the portal's intake, whose
                                         validation goes to the clusters; their version ids in F
"""

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.settings")

import django  # noqa: E402

django.setup()

from allauth.mfa.totp.internal.auth import TOTP  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django_q.tasks import async_task  # noqa: E402

from agent.demo_workflows import COHORT_QUERY, pack_workflow_crate  # noqa: E402
from crates import dispatch  # noqa: E402
from crates import services as crate_services  # noqa: E402
from crates.demo_agents import COHORT_COUNT, _cohort_count_crate  # noqa: E402
from crates.models import Job  # noqa: E402
from portal import roles, services  # noqa: E402
from portal.forms import ProjectForm  # noqa: E402
from portal.models import TRE, Project  # noqa: E402
from tests import cratekit, factories  # noqa: E402
from tests.builders import approve_all_steps, submit  # noqa: E402
from tests.dispatch_helpers import approve_workflow, attach_workflow_crate, results_crate  # noqa: E402

ORCID = "0000-0002-1825-0097"
User = get_user_model()


def _person(username, *role_names, mfa=False):
    user = factories.UserFactory(username=username)
    for role in role_names:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    if mfa:
        TOTP.activate(user, "JBSWY3DPEHPK3PXP")
    return user


def _cast():
    """The shared test cast (see tests/conftest.py): TRE A, its officer and checkers, a project."""
    admin = _person("admin", roles.FEDERATION_ADMIN, mfa=True)
    admin.is_superuser = admin.is_staff = True
    admin.save()
    tre = factories.TREFactory(name="TRE A", slug="tre-a")
    alice = _person("alice", roles.RESEARCHER)
    factories.AccreditationFactory(person=alice)
    alice.profile.orcid = ORCID
    alice.profile.display_name = "Alice Researcher"
    alice.profile.save()
    bob = _person("bob", roles.RESEARCHER, roles.PROJECT_LEAD)
    factories.AccreditationFactory(person=bob)
    olivia = _person("olivia", mfa=True)
    services.grant_role(olivia, roles.GOVERNANCE_OFFICER, by=admin, tre=tre)
    for checker in ("cam", "chris"):
        services.grant_role(_person(checker, mfa=True), roles.OUTPUT_CHECKER, by=admin, tre=tre)
    form = ProjectForm(
        {
            "identifier": "PRJ-2026-0100",
            "title": "Outcomes after COVID-19",
            "lay_summary": "Who recovered, and how fast.",
            "public_benefit": "Better planning.",
            "technical_summary": "Cox models.",
            "sponsor": factories.OrganisationFactory(name="Sponsoring University").pk,
        }
    )
    assert form.is_valid(), form.errors
    project = services.create_project(form, by=bob)
    services.accept_invitation(services.invite_member(project, alice, "researcher", by=bob), by=alice)
    approval = services.request_project_approval(project, tre, by=bob)
    agreement = factories.AgreementFactory(project=project, tre=tre, created_by=olivia)
    agreement.datasets.add(factories.DatasetFactory(tre=tre))
    services.change_agreement_status(agreement, "activate", by=olivia)
    services.decide_project(approval, "approved", by=olivia)
    for person in (alice, bob):
        for membership_approval in project.memberships.get(person=person).approvals.all():
            services.decide_membership(membership_approval, "approved", by=olivia)
    workflow = factories.WorkflowFactory(
        workflow_id=COHORT_COUNT.workflow_id,
        name="Cohort count",
        version="1",
        executor="sql-aggregate",
        language="cwl",
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "cohort"
        folder.mkdir()
        packed = pack_workflow_crate(_cohort_count_crate(folder), Path(scratch) / "cohort.zip")
        attach_workflow_crate(workflow, packed.path)
    approve_workflow(workflow, tre, olivia)


def _request_crate(dest):
    """A request crate asking TRE A to run the cohort count on the example query."""
    metadata = cratekit.request_metadata(
        orcid=ORCID,
        project_identifier=Project.objects.get().identifier,
        workflow_id=COHORT_COUNT.workflow_id,
    )
    graph = metadata["@graph"]
    run = next(e for e in graph if e.get("@type") == "CreateAction")
    graph.append({"@id": "#param-query", "@type": "FormalParameter", "name": "query"})
    graph.append(
        {
            "@id": "#input-query",
            "@type": "PropertyValue",
            "name": "query",
            "value": COHORT_QUERY.read_text(),
            "exampleOfWork": {"@id": "#param-query"},
        }
    )
    run["object"] = [{"@id": "#input-query"}]
    return cratekit.make_crate_zip(dest, metadata, cratekit.input_files())


@contextlib.contextmanager
def _inline(execute=False):
    # Outside a transaction the on-commit callbacks run at once: no capture is needed.
    yield


def seed(args):
    _cast()
    tre = TRE.objects.get(slug="tre-a")
    alice, olivia = (User.objects.get(username=name) for name in ("alice", "olivia"))
    jobs = []
    with tempfile.TemporaryDirectory() as scratch:
        crate = _request_crate(Path(scratch) / "request.zip")
        for n in range(args.jobs):
            request = submit(
                researcher=alice,
                project=Project.objects.get(),
                tres=[tre],
                crate_zip=crate,
                capture=_inline,
                title=f"Cohort count {n + 1}",
            )
            job = approve_all_steps(request.jobs.get(), olivia)
            assert job.status == Job.Status.QUEUED, job.status
            jobs.append(job.pk)
    tokens = {name: dispatch.issue_agent(tre, name, by=olivia)[1] for name in args.agents.split(",") if name}
    Path(args.out).write_text(json.dumps({"jobs": jobs, "tokens": tokens}))


def make_results_crate(args):
    job = Job.objects.select_related("tre", "version").get(pk=args.job)
    header = "region,age_band,sex,persons\n"
    outputs = {}
    for n in range(args.files):
        rows = "".join(
            f"region-{n}-{i % 97},{(i % 9) * 10}-{(i % 9) * 10 + 9},{'FM'[i % 2]},{20 + i % 50}\n"
            for i in range(args.rows)
        )
        outputs[f"table_{n:02d}.csv"] = (header + rows).encode()
    path = results_crate(job, Path(args.dest), outputs=outputs)
    print(hashlib.sha256(Path(path).read_bytes()).hexdigest())


def enqueue(args):
    for _ in range(args.times):
        print(async_task(args.func, *[int(a) for a in args.args]))


def marks(args):
    for key in range(args.count):
        async_task("tests.faults.tasks.mark", str(key), args.seconds, task_name=f"mark-{key}")


def submit_many(args):
    alice = User.objects.get(username="alice")
    tre = TRE.objects.get(slug="tre-a")
    versions = []
    with tempfile.TemporaryDirectory() as scratch:
        crate = _request_crate(Path(scratch) / "request.zip").read_bytes()
        for n in range(args.count):
            upload = SimpleUploadedFile("request.zip", crate, content_type="application/zip")
            request = crate_services.submit_request(
                by=alice, project=Project.objects.get(), tres=[tre], title=f"Intake {n + 1}", upload=upload
            )
            versions.append(request.versions.get().pk)
    Path(args.out).write_text(json.dumps(versions))


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.faults.helper")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("seed")
    command.add_argument("--jobs", type=int, default=1)
    command.add_argument("--agents", default="")
    command.add_argument("--out", required=True)
    command.set_defaults(run=seed)
    command = commands.add_parser("results-crate")
    command.add_argument("--job", type=int, required=True)
    command.add_argument("--dest", required=True)
    command.add_argument("--files", type=int, default=1)
    command.add_argument("--rows", type=int, default=10)
    command.set_defaults(run=make_results_crate)
    command = commands.add_parser("enqueue")
    command.add_argument("func")
    command.add_argument("args", nargs="*")
    command.add_argument("--times", type=int, default=1)
    command.set_defaults(run=enqueue)
    command = commands.add_parser("marks")
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--seconds", type=float, default=0.0)
    command.set_defaults(run=marks)
    command = commands.add_parser("submit")
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--out", required=True)
    command.set_defaults(run=submit_many)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
