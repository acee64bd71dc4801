"""A small, defensive reader of RO-Crate JSON-LD into an RDF-like graph.

The community Five Safes profile is written in SHACL, i.e. against the RDF graph a JSON-LD processor
makes of the metadata file. To agree with it without an RDF stack, this module applies the parts of
JSON-LD that change that graph for RO-Crates:

* keys and ``@type`` values are expanded with the active context (the RO-Crate context's terms, compact
  IRIs such as ``dct:conformsTo``, absolute IRIs, inline term definitions); keys the context does not
  define are dropped, exactly as a JSON-LD processor drops them;
* ``@id`` values are resolved against a base, so ``#x`` and ``./#x`` are the same node;
* strings are literals unless written as ``{"@id": ...}`` (the RO-Crate contexts coerce nothing), so
  ``"actionStatus": "http://schema.org/CompletedActionStatus"`` is a string while
  ``"additionalType": {"@id": "https://w3id.org/shp#CheckValue"}`` is an IRI;
* entities listed twice are merged, embedded entities are flattened, repeated values count once.

It never raises on malformed input: anything it cannot read is recorded as a :class:`Problem` and left
out of the graph. Depth is bounded, so hostile nesting cannot exhaust the stack.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from . import vocab

__all__ = ["BASE", "MAX_DEPTH", "CrateGraph", "Lit", "Node", "Problem", "Ref", "Term", "read_graph"]

#: Base IRI relative ``@id`` values resolve against. A ``file:`` IRI: relative ids must never look like
#: web addresses (the profile treats ``http(s)`` ids specially), and ``../x`` visibly escapes the root.
BASE = "file:///.ro-crate-root/"
#: Deepest nesting of JSON arrays and objects read; deeper values are reported and skipped.
MAX_DEPTH = 64

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")
_KNOWN_EXTRA_CONTEXTS = frozenset(
    {
        # Workflow Run Crate terms: none of them is used by the Five Safes checks.
        "https://w3id.org/ro/terms/workflow-run/context",
        "https://w3id.org/ro/terms/workflow-run",
    }
)
_IGNORED_CONTEXT_KEYWORDS = frozenset({"@version", "@protected", "@propagate", "@direction"})


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a node: an IRI, or a blank node when ``key`` starts with ``_:``."""

    key: str

    @property
    def blank(self) -> bool:
        return self.key.startswith("_:")


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal value: lexical form, datatype IRI and optional language tag."""

    lexical: str
    datatype: str = vocab.XSD_STRING
    language: str | None = None

    @property
    def is_string(self) -> bool:
        """True for a plain string (``xsd:string``, no language tag), as ``sh:datatype xsd:string`` wants."""
        return self.datatype == vocab.XSD_STRING and self.language is None


Term = Ref | Lit


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the document that is not a well-formed RO-Crate, found while reading it."""

    check: str
    message: str
    entity: str | None = None


@dataclass(slots=True)
class Node:
    """One node of the graph. ``props`` maps property IRIs to distinct values in document order."""

    key: str
    label: str
    types: set[str] = field(default_factory=set)
    props: dict[str, list[Term]] = field(default_factory=dict)
    _members: dict[str, set[Term]] = field(default_factory=dict, repr=False)

    def values(self, prop: str) -> list[Term]:
        return self.props.get(prop, [])

    def add(self, prop: str, term: Term) -> None:
        members = self._members.setdefault(prop, set())
        if term not in members:
            members.add(term)
            self.props.setdefault(prop, []).append(term)


@dataclass(slots=True)
class _TermDef:
    iri: str | None
    coerce: str | None = None  # "@id", "@vocab" or a datatype IRI
    language: str | None = None


@dataclass
class _Context:
    terms: dict[str, _TermDef] = field(default_factory=dict)
    vocab: str | None = None
    base: str = BASE
    language: str | None = None

    def copy(self) -> _Context:
        return _Context(dict(self.terms), self.vocab, self.base, self.language)


class CrateGraph:
    """The nodes of one metadata document, with the problems met while reading it.

    Invariants: every :class:`Ref` stored as a value or key is resolved (relative ids joined with the
    base), so node identity is RDF node identity; ``nodes`` holds every node that is described or
    referenced; ``problems`` lists each structural defect once.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.problems: list[Problem] = []
        self._context = _Context()
        self._inverse: dict[str, dict[str, list[Node]]] | None = None

    # -- lookups -------------------------------------------------------------------------------------
    def node(self, key: str) -> Node | None:
        return self.nodes.get(key)

    def label(self, term: Term) -> str:
        """How a value is shown to people: the ``@id`` as written, or a literal's text."""
        if isinstance(term, Lit):
            return term.lexical
        node = self.nodes.get(term.key)
        return node.label if node else term.key

    def types(self, term: Term) -> set[str]:
        if isinstance(term, Lit):
            return set()
        node = self.nodes.get(term.key)
        return node.types if node else set()

    def values(self, term: Term | Node, prop: str) -> list[Term]:
        """Values of ``prop`` on a node (literals and undescribed references have none)."""
        if isinstance(term, Node):
            return term.values(prop)
        if isinstance(term, Lit):
            return []
        node = self.nodes.get(term.key)
        return node.values(prop) if node else []

    def instances(self, cls: str) -> list[Node]:
        return [node for node in self.nodes.values() if cls in node.types]

    def objects_of(self, prop: str) -> list[Term]:
        """Every distinct value of ``prop`` across the graph, in document order."""
        seen: dict[Term, None] = {}
        for node in self.nodes.values():
            for term in node.values(prop):
                seen.setdefault(term, None)
        return list(seen)

    def referrers(self, prop: str, key: str) -> list[Node]:
        """Nodes whose ``prop`` includes a reference to ``key``."""
        if self._inverse is None:
            inverse: dict[str, dict[str, list[Node]]] = {}
            for node in self.nodes.values():
                for name, values in node.props.items():
                    for term in values:
                        if isinstance(term, Ref):
                            inverse.setdefault(name, {}).setdefault(term.key, []).append(node)
            self._inverse = inverse
        return self._inverse.get(prop, {}).get(key, [])

    def key(self, identifier: str) -> str:
        """The node key an ``@id`` written in this document's top level denotes."""
        return _expand_id(identifier, self._context)


def read_graph(document: Any) -> CrateGraph:
    """Read a parsed metadata document into a :class:`CrateGraph`; never raises on malformed input."""
    return _Reader().read(document)


class _Reader:
    def __init__(self) -> None:
        self.graph = CrateGraph()
        self._blank_count = 0
        self._path: set[int] = set()  # ids of containers being read, to stop on reference cycles
        self._reported: set[tuple[str, str | None, str]] = set()

    # -- problems ------------------------------------------------------------------------------------
    def problem(self, check: str, message: str, entity: str | None = None) -> None:
        key = (check, entity, message)
        if key not in self._reported:
            self._reported.add(key)
            self.graph.problems.append(Problem(check, message, entity))

    # -- document ------------------------------------------------------------------------------------
    def read(self, document: Any) -> CrateGraph:
        if not isinstance(document, Mapping):
            self.problem("ro-crate.document", "The metadata file must hold one JSON object.")
            return self.graph
        context = self.context(document.get("@context"), _Context(), depth=1)
        self.graph._context = context
        entries = document.get("@graph")
        if entries is None:
            self.problem(
                "ro-crate.graph",
                "The metadata file has no @graph list; RO-Crate lists every entity in @graph.",
            )
            # JSON-LD still reads the top-level object as one entity, and so does the community profile.
            top = {key: value for key, value in document.items() if key != "@context"}
            if top:
                self.node_object(top, context, depth=1, parent=None, top_level=True)
            return self.graph
        extra = sorted(key for key in document if key not in ("@context", "@graph"))
        if extra:
            self.problem(
                "ro-crate.graph",
                "Only @context and @graph may appear at the top of the metadata file, not "
                + ", ".join(extra[:5])
                + ".",
            )
        if isinstance(entries, Mapping):
            self.problem("ro-crate.graph", "@graph must be a list of entities, not a single object.")
            entries = [entries]
        if not isinstance(entries, list):
            self.problem("ro-crate.graph", "@graph must be a list of entities.")
            return self.graph
        seen_ids: set[str] = set()
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                self.problem(
                    "ro-crate.entity", f"Item {position + 1} of @graph is not an entity (JSON object)."
                )
                continue
            identifier = entry.get("@id")
            if isinstance(identifier, str):
                key = _expand_id(identifier, context)
                if key in seen_ids:
                    self.problem(
                        "ro-crate.duplicate_id",
                        f"The entity {identifier!r} is listed more than once in @graph; "
                        "merge the copies into one entity.",
                        identifier,
                    )
                seen_ids.add(key)
            self.node_object(entry, context, depth=2, parent=None, top_level=True)
        return self.graph

    # -- contexts ------------------------------------------------------------------------------------
    def context(self, value: Any, active: _Context, depth: int) -> _Context:
        result = active.copy()
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                result = _Context()
            elif isinstance(item, str):
                self.remote_context(item, result)
            elif isinstance(item, Mapping):
                self.inline_context(item, result, depth + 1)
            else:
                self.problem("ro-crate.context_invalid", "Each @context entry must be a URL or an object.")
        return result

    def remote_context(self, url: str, context: _Context) -> None:
        match = vocab.ANY_ROCRATE_CONTEXT_RE.match(url)
        if match:
            version = match.group(1)
            for term, iri in vocab.ROCRATE_TERMS.items():
                context.terms[term] = _TermDef(iri)
            for prefix, iri in vocab.ROCRATE_PREFIXES.items():
                context.terms[prefix] = _TermDef(iri)
            minor = int(version.split(".")[1])
            formal = vocab.FORMAL_PARAMETER_BY_VERSION[
                "1.3" if minor >= 3 else "1.2" if minor == 2 else "1.1"
            ]
            context.terms["FormalParameter"] = _TermDef(formal)
        elif url.rstrip("/") not in _KNOWN_EXTRA_CONTEXTS:
            self.problem(
                "ro-crate.context_unknown",
                f"The JSON-LD context {url!r} is not one this validator knows; terms it defines are ignored.",
            )

    def inline_context(self, definitions: Mapping[str, Any], context: _Context, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.problem("ro-crate.nesting", "The @context is nested too deeply.")
            return
        for key, value in definitions.items():
            if key == "@vocab":
                context.vocab = None if value is None else _expand_iri(value, context, vocab=True)
            elif key == "@base":
                if isinstance(value, str):
                    context.base = _resolve(value, context.base)
            elif key == "@language":
                context.language = value if isinstance(value, str) else None
            elif key in _IGNORED_CONTEXT_KEYWORDS:
                continue
            elif key.startswith("@"):
                self.problem(
                    "ro-crate.jsonld_feature",
                    f"The context keyword {key} is not supported here and is ignored.",
                )
            else:
                self.define_term(key, value, definitions, context, set())

    def define_term(
        self, term: str, value: Any, local: Mapping[str, Any], context: _Context, defining: set[str]
    ) -> None:
        if term in defining:
            self.problem(
                "ro-crate.context_invalid", f"The context term {term!r} is defined in terms of itself."
            )
            return
        defining = defining | {term}
        # A definition may use prefixes defined beside it in the same context object: define those first.
        raw = value.get("@id") if isinstance(value, Mapping) else value
        if isinstance(raw, str) and ":" in raw:
            prefix = raw.split(":", 1)[0]
            if prefix in local and prefix != term and prefix not in context.terms:
                self.define_term(prefix, local[prefix], local, context, defining)
        if value is None:
            context.terms[term] = _TermDef(None)
        elif isinstance(value, str):
            context.terms[term] = _TermDef(_expand_iri(value, context, vocab=True))
        elif isinstance(value, Mapping):
            if "@reverse" in value:
                self.problem(
                    "ro-crate.jsonld_feature",
                    f"The reverse property {term!r} is not supported and is ignored.",
                )
                context.terms[term] = _TermDef(None)
                return
            iri_value = value.get("@id", term)
            iri = None if iri_value is None else _expand_iri(iri_value, context, vocab=True)
            coerce = value.get("@type")
            if isinstance(coerce, str) and coerce not in ("@id", "@vocab"):
                coerce = _expand_iri(coerce, context, vocab=True)
            language = value.get("@language") if isinstance(value.get("@language"), str) else None
            context.terms[term] = _TermDef(iri, coerce if isinstance(coerce, str) else None, language)
        else:
            self.problem("ro-crate.context_invalid", f"The context term {term!r} has an invalid definition.")

    # -- nodes and values ----------------------------------------------------------------------------
    def fresh_blank(self) -> str:
        self._blank_count += 1
        return f"_:b{self._blank_count}"

    def node_object(
        self, obj: Mapping[str, Any], context: _Context, *, depth: int, parent: str | None, top_level: bool
    ) -> Ref | None:
        if depth > MAX_DEPTH:
            self.problem("ro-crate.nesting", "The metadata is nested too deeply to read.", parent)
            return None
        if id(obj) in self._path:
            self.problem("ro-crate.nesting", "The metadata refers to itself in a loop.", parent)
            return None
        self._path.add(id(obj))
        try:
            return self._node_object(obj, context, depth=depth, parent=parent, top_level=top_level)
        finally:
            self._path.discard(id(obj))

    def _node_object(
        self, obj: Mapping[str, Any], context: _Context, *, depth: int, parent: str | None, top_level: bool
    ) -> Ref:
        if "@context" in obj:
            self.problem(
                "ro-crate.jsonld_feature",
                "An entity carries its own @context, which is not supported here and is ignored.",
                obj.get("@id") if isinstance(obj.get("@id"), str) else parent,
            )
        identifier = obj.get("@id")
        if isinstance(identifier, str):
            key = _expand_id(identifier, context)
            label = identifier
        else:
            if identifier is not None:
                self.problem("ro-crate.entity", "An entity's @id must be a string.", parent)
            key = self.fresh_blank()
            label = f"(unnamed entity in {parent})" if parent else f"(unnamed entity {key})"
            if top_level:
                self.problem("ro-crate.entity", "Every entity in @graph needs an @id.", label)
        node = self.graph.nodes.get(key)
        if node is None:
            node = self.graph.nodes[key] = Node(key, label)
        elif top_level and node.label != label and isinstance(identifier, str):
            node.label = label  # prefer the spelling of the entity's own description
        described = any(not name.startswith("@") for name in obj) or "@type" in obj
        if not top_level and described:
            self.problem(
                "ro-crate.flattened",
                f"The entity {label!r} is written inside {parent!r}; list it in @graph and refer to it "
                'with {"@id": ...}.',
                label,
            )
        raw_types = obj.get("@type")
        if raw_types is None:
            if top_level:
                self.problem("ro-crate.entity_type", f"The entity {label!r} has no @type.", label)
        else:
            for item in raw_types if isinstance(raw_types, list) else [raw_types]:
                if isinstance(item, str):
                    node.types.add(_expand_type(item, context))
                else:
                    self.problem("ro-crate.entity", "Each @type must be a string.", label)
        for name, value in obj.items():
            if name.startswith("@"):
                if name not in ("@id", "@type", "@context"):
                    self.problem(
                        "ro-crate.jsonld_feature",
                        f"The keyword {name} is not supported in RO-Crate entities and is ignored.",
                        label,
                    )
                continue
            prop = _expand_iri(name, context, vocab=True)
            if prop is None or prop.startswith(("@", "_:")):
                continue  # JSON-LD drops keys its context does not define
            definition = context.terms.get(name, _TermDef(prop))
            for term in self.values(value, definition, context, depth=depth + 1, parent=label):
                node.add(prop, term)
        return Ref(key)

    def values(
        self, value: Any, definition: _TermDef, context: _Context, *, depth: int, parent: str
    ) -> Iterator[Term]:
        if depth > MAX_DEPTH:
            self.problem("ro-crate.nesting", "The metadata is nested too deeply to read.", parent)
            return
        if isinstance(value, list):
            if id(value) in self._path:
                self.problem("ro-crate.nesting", "The metadata refers to itself in a loop.", parent)
                return
            self._path.add(id(value))
            try:
                for item in value:
                    yield from self.values(item, definition, context, depth=depth + 1, parent=parent)
            finally:
                self._path.discard(id(value))
            return
        term = self.value(value, definition, context, depth=depth, parent=parent)
        if term is not None:
            yield term

    def value(
        self, value: Any, definition: _TermDef, context: _Context, *, depth: int, parent: str
    ) -> Term | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return Lit("true" if value else "false", vocab.XSD_BOOLEAN)
        if isinstance(value, int):
            return Lit(str(value), vocab.XSD_INTEGER)
        if isinstance(value, float):
            return Lit(repr(value), vocab.XSD_DOUBLE)
        if isinstance(value, str):
            if definition.coerce == "@id":
                return Ref(_expand_id(value, context))
            if definition.coerce == "@vocab":
                return Ref(_expand_type(value, context))
            if definition.coerce:
                return Lit(value, definition.coerce)
            language = definition.language or context.language
            if language:
                return Lit(value, vocab.RDF_LANG_STRING, language)
            return Lit(value)
        if isinstance(value, Mapping):
            if "@value" in value:
                return self.value_object(value, context, parent)
            if "@list" in value:
                # An RDF list is a chain of blank nodes: never the values themselves, and never typed.
                for _ in self.values(value["@list"], definition, context, depth=depth + 1, parent=parent):
                    pass
                return Ref(self.fresh_blank())
            if "@set" in value:
                terms = list(self.values(value["@set"], definition, context, depth=depth + 1, parent=parent))
                if len(terms) > 1:
                    self.problem("ro-crate.jsonld_feature", "Use a plain JSON list instead of @set.", parent)
                return terms[0] if len(terms) == 1 else None
            return self.node_object(value, context, depth=depth + 1, parent=parent, top_level=False)
        self.problem("ro-crate.entity", f"A value of {parent!r} is not valid JSON-LD.", parent)
        return None

    def value_object(self, value: Mapping[str, Any], context: _Context, parent: str) -> Lit | None:
        raw = value["@value"]
        if raw is None:
            return None
        if isinstance(raw, (Mapping, list)):
            self.problem("ro-crate.entity", "An @value must be a string, number or boolean.", parent)
            return None
        language = value.get("@language")
        if isinstance(language, str):
            return Lit(str(raw), vocab.RDF_LANG_STRING, language)
        datatype = value.get("@type")
        if isinstance(datatype, str):
            return Lit(
                str(raw).lower() if isinstance(raw, bool) else str(raw), _expand_type(datatype, context)
            )
        plain = self.value(raw, _TermDef(None), context, depth=0, parent=parent)
        return plain if isinstance(plain, Lit) else None


def _expand_iri(value: Any, context: _Context, *, vocab: bool) -> str | None:
    """Expand a key, type or context value; ``None`` when JSON-LD would drop it."""
    if not isinstance(value, str):
        return None
    if value.startswith("@"):
        return value
    if vocab and value in context.terms:
        return context.terms[value].iri
    if ":" in value:
        prefix, suffix = value.split(":", 1)
        if prefix == "_":
            return value
        definition = context.terms.get(prefix)
        if (
            not suffix.startswith("//")
            and definition is not None
            and definition.iri
            and definition.iri.endswith(_GEN_DELIMS)
        ):
            return definition.iri + suffix
        if _SCHEME_RE.match(value):
            return value
    if vocab and context.vocab is not None:
        return context.vocab + value
    return None


def _expand_type(value: str, context: _Context) -> str:
    # @type values are vocabulary-relative, then document-relative: an unknown term is still a type.
    return _expand_iri(value, context, vocab=True) or _resolve(value, context.base)


def _expand_id(value: str, context: _Context) -> str:
    if value.startswith("_:"):
        return value
    if ":" in value:
        expanded = _expand_iri(value, context, vocab=False)
        if expanded is not None:
            return expanded
    return _resolve(value, context.base)


@functools.lru_cache(maxsize=65536)
def _resolve(identifier: str, base: str) -> str:
    # Cached: urljoin dominates reading large crates, and the same ids recur as references.
    if identifier.startswith("_:") or _SCHEME_RE.match(identifier):
        return identifier
    try:
        return urljoin(base, identifier)
    except ValueError:  # e.g. a malformed authority such as "//[x"
        return base + identifier
