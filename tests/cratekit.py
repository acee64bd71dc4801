"""Make crate ZIPs for tests from the example crates in tests/data or from metadata written in the test."""

import copy
import json
import shutil
import tempfile
from pathlib import Path

from crates.fivesafes.bag import create_bag
from crates.fivesafes.writeback import pack_bag
from tests.reference_data import CRATE_FIXTURES as FIXTURES


def fixture_metadata(name="validator-valid-five-safes-crate-request"):
    return json.loads((FIXTURES / name / "ro-crate-metadata.json").read_text())


def make_crate_zip(dest, metadata, files=None, bag_name="crate"):
    """A BagIt ZIP whose payload is `metadata` plus `files` ({relative path: bytes})."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as scratch:
        bag = Path(scratch) / bag_name
        (bag / "data").mkdir(parents=True)
        (bag / "data" / "ro-crate-metadata.json").write_text(json.dumps(metadata, indent=1))
        for relative, content in (files or {}).items():
            target = bag / "data" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        create_bag(bag)
        pack_bag(bag, dest)
    return dest


def request_metadata(*, orcid, project_identifier, workflow_id, version="1", datasets=()):
    """The validator's valid request crate, re-pointed at our registry's people, project and workflow."""
    doc = copy.deepcopy(fixture_metadata())
    graph = doc["@graph"]
    old_workflow = "https://workflowhub.eu/workflows/289?version=1"
    new_workflow = f"{workflow_id}?version={version}"
    old_person = "https://orcid.org/0000-0001-9842-9718"
    new_person = f"https://orcid.org/{orcid}"
    text = json.dumps(doc).replace(old_workflow, new_workflow).replace(old_person, new_person)
    text = text.replace('"value": "project81"', f'"value": "{project_identifier}"')
    doc = json.loads(text)
    graph = doc["@graph"]
    root = next(e for e in graph if e.get("@id") == "./")
    mentions = root["mentions"] if isinstance(root["mentions"], list) else [root["mentions"]]
    for identifier, name in datasets:
        # Named from the root, as the portal's builder does (an input would need a FormalParameter).
        graph.append({"@id": identifier, "@type": "Dataset", "name": name, "identifier": identifier})
        mentions.append({"@id": identifier})
    root["mentions"] = mentions
    return doc


def input_files():
    return {"input1.txt": b"sequence data for the workflow\n"}


def copy_fixture_bag(name, dest_dir):
    return shutil.copytree(FIXTURES / name, Path(dest_dir) / name)
