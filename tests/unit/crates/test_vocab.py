"""The JSON-LD terms the validator relies on are those of the published RO-Crate contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crates.fivesafes import vocab

CONTEXTS = {
    "1.1": "ro-crate-1.1.context.jsonld",
    "1.2-DRAFT": "ro-crate-1.2-DRAFT.context.jsonld",
    "1.2": "ro-crate-1.2.context.jsonld",
    "1.3": "ro-crate-1.3.context.jsonld",
}


def published_terms(reference_dir: Path, version: str) -> dict[str, str]:
    context = json.loads(
        (reference_dir / "oracles" / "contexts" / CONTEXTS[version]).read_text(encoding="utf-8")
    )["@context"]
    return context if isinstance(context, dict) else {k: v for part in context for k, v in part.items()}


@pytest.mark.parametrize("version", CONTEXTS)
def test_terms_match_the_published_context(reference_dir: Path, version: str) -> None:
    terms = published_terms(reference_dir, version)
    for term, iri in vocab.ROCRATE_TERMS.items():
        assert terms.get(term) == iri, term
    for prefix, iri in vocab.ROCRATE_PREFIXES.items():
        if prefix in terms:
            assert terms[prefix] == iri, prefix
    assert terms["FormalParameter"] == vocab.FORMAL_PARAMETER_BY_VERSION[version.removesuffix("-DRAFT")]


@pytest.mark.parametrize("version", CONTEXTS)
def test_no_other_term_reaches_a_checked_iri(reference_dir: Path, version: str) -> None:
    checked = set(vocab.ROCRATE_TERMS.values())
    others = {term for term, iri in published_terms(reference_dir, version).items() if iri in checked}
    assert others == set(vocab.ROCRATE_TERMS)


def test_the_context_pattern_is_the_profiles() -> None:
    assert vocab.ROCRATE_CONTEXT_RE.match("https://w3id.org/ro/crate/1.2-DRAFT/context")
    assert vocab.ROCRATE_CONTEXT_RE.match("https://w3id.org/ro/crate/1.3/context")
    assert not vocab.ROCRATE_CONTEXT_RE.match("https://w3id.org/ro/crate/1.1/context")
    assert not vocab.ROCRATE_CONTEXT_RE.match("http://w3id.org/ro/crate/1.2/context")
