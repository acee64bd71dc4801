"""Issue 16 in the portal: the demo's table checked under the TRE's zeros setting, every flag listed,
the viewer marking the flagged value, a declared table shape from the results crate obeyed."""

import pytest

from crates.models import Job
from reviews import outputs
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
DEMO = (
    b"age_band,sex,persons\n"
    + b"".join(
        b"%s,%s,%d\n" % (band.encode(), sex, count)
        for band in [f"{low}-{low + 9}" for low in range(0, 90, 10)] + ["90+"]
        for sex, count in ((b"female", 40), (b"male", 35), (b"other", 0))
    )
).replace(b"90+,male,35", b"90+,male,4")


def _returned(new_job, tmp_path, tables, *, metadata=None):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, tables, tmp_path=tmp_path)
    if metadata is not None:
        upload.metadata = metadata(upload.metadata)
        upload.save(update_fields=["metadata"])
    outputs.check_outputs(upload.pk)
    return job.outputs.get()


def test_zeros_are_not_flagged_when_the_tre_says_they_are_not_disclosive(new_job, tmp_path, tre_a):
    tre_a.zeros_disclosive = False
    tre_a.save()
    output = _returned(new_job, tmp_path, {"by_age_sex.csv": DEMO})
    assert output.sdc_verdict == "fail"
    assert [(f["rule"], f["row"], f["value"]) for f in output.sdc["flags"]] == [
        ("threshold", ["90+", "male"], "4")
    ]


def test_every_flag_is_listed_and_the_viewer_marks_the_value(client, new_job, tmp_path, tre_a, cam):
    tre_a.zeros_disclosive = True
    tre_a.save()
    output = _returned(new_job, tmp_path, {"by_age_sex.csv": DEMO})
    flags = output.sdc["flags"]
    assert len(flags) == 21  # ten zeros (zeros and threshold each) and the 4
    client.force_login(cam)
    page = client.get(f"/jobs/{output.job_id}/outputs/").content.decode()
    assert page.count("A zero count is disclosive under this policy.") == 10
    viewer = client.get(f"/outputs/{output.pk}/", headers={"HX-Request": "true"}).content.decode()
    # Labels are row headers; the flagged cells are the values, never the label "other".
    assert '<th scope="row">other</th>' in viewer
    assert viewer.count('<td class="portal-flag portal-flag--fail">0') == 10
    assert viewer.count('<td class="portal-flag portal-flag--fail">4') == 1
    assert '<td class="portal-flag portal-flag--fail">other' not in viewer


def test_a_csvw_table_schema_in_the_results_crate_settles_the_reading(new_job, tmp_path):
    table = b"code,A,B\n1,15,59\n2,15,80\n"

    def declare(metadata):
        for entity in metadata["@graph"]:
            if str(entity.get("@id", "")).endswith("coded.csv"):
                entity["tableSchema"] = {
                    "columns": [
                        {"name": "code", "datatype": "string"},
                        {"name": "A", "datatype": "integer"},
                        {"name": "B", "datatype": "integer"},
                    ],
                    "primaryKey": "code",
                }
        return metadata

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    undeclared = _returned(new_job, tmp_path / "a", {"coded.csv": table})
    assert undeclared.sdc_verdict == "fail"  # the codes 1 and 2 could be counts
    declared = _returned(new_job, tmp_path / "b", {"coded.csv": table}, metadata=declare)
    assert declared.sdc_verdict == "pass", declared.sdc
    assert "declared shape" in declared.sdc["notes"][0]


def test_the_approved_workflows_output_schema_settles_the_reading(new_job, tmp_path, registry):
    table = b"code,A,B\n1,15,59\n2,15,80\n"
    workflow = registry["workflow"]
    workflow.output_schemas = {"coded.csv": {"labels": ["code"], "counts": ["A", "B"]}}
    workflow.full_clean()
    workflow.save()
    output = _returned(new_job, tmp_path, {"coded.csv": table})
    assert output.job.workflow_id == workflow.pk
    assert output.sdc_verdict == "pass", output.sdc
    assert "declared shape" in output.sdc["notes"][0]


@pytest.mark.parametrize(
    "schemas",
    [{"t.csv": {"rows": ["a"]}}, {"t.csv": {"labels": "a"}}, {"t.csv": {}}, {"t.csv": {"counts": [""]}}],
)
def test_malformed_output_schemas_are_refused(registry, schemas):
    from django.core.exceptions import ValidationError

    workflow = registry["workflow"]
    workflow.output_schemas = schemas
    with pytest.raises(ValidationError):
        workflow.full_clean()
