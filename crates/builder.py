"""Build a request crate from the researcher's form, using the registry's records for names and ids."""

import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from crates.fivesafes import builder as fivesafes_builder


def build_for_request(
    *, user, project, tres, workflow, datasets, parameters, inputs, title, description, scratch, kept=()
):
    """Write the input files to `scratch`, build and pack the crate; return the ZIP's path.

    `inputs` are uploads (their parameter is the file name without suffix) or (parameter, upload)
    pairs; `kept` are (parameter, path) pairs of files already on disk (kept from a previous version).
    """
    profile = user.profile
    if not profile.orcid:
        raise ValidationError("Add your ORCID iD to your profile first: the crate names you by it.")
    input_dir = Path(scratch) / "inputs"
    input_dir.mkdir(parents=True, exist_ok=True)
    input_files = []
    for item in inputs:
        parameter, upload = item if isinstance(item, tuple) else (None, item)
        name = Path(upload.name).name
        if not name or name.startswith("."):
            raise ValidationError(f"{upload.name!r} is not a usable file name.")
        path = input_dir / name
        if path.exists():
            raise ValidationError(f"Two input files are called {name}; rename one.")
        with path.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        input_files.append(fivesafes_builder.InputFile(path, parameter))
    for parameter, kept_path in kept:
        path = input_dir / Path(kept_path).name
        if path.exists():
            raise ValidationError(f"Two input files are called {path.name}; rename one.")
        shutil.copyfile(kept_path, path)
        input_files.append(fivesafes_builder.InputFile(path, parameter))
    base = settings.PORTAL_BASE_URL.rstrip("/")
    workflow_id = workflow.workflow_id
    if "version=" not in workflow_id:
        workflow_id += ("&" if "?" in workflow_id else "?") + f"version={workflow.version}"
    try:
        spec = fivesafes_builder.RequestSpec(
            title=title,
            description=description or title,
            project_identifier=project.identifier,
            project_name=project.title,
            person_name=profile.name,
            person_orcid=f"https://orcid.org/{profile.orcid}",
            affiliation_name=profile.affiliation.name if profile.affiliation else "Unaffiliated",
            affiliation_id=(profile.affiliation.ror_id or profile.affiliation.website or None)
            if profile.affiliation
            else None,
            workflow_id=workflow_id,
            workflow_version=workflow.version,
            workflow_name=workflow.name,
            workflow_distribution=f"{base}/api/v1/agent/workflows/{workflow.pk}/crate",
            parameters=[fivesafes_builder.InputParameter(name, value) for name, value in parameters],
            input_files=input_files,
            datasets=[d.identifier for d in datasets],
            target_tres=[fivesafes_builder.TargetTre(t.name, f"{base}{t.get_absolute_url()}") for t in tres],
        )
        return fivesafes_builder.build_request_crate(spec, Path(scratch) / "request.zip").path
    except ValueError as exc:
        raise ValidationError(f"The crate could not be built: {exc}") from exc
