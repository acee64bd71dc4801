"""Template helpers: NHS.UK frontend form fields, status tags and permission questions."""

from django import forms, template
from django.template.loader import render_to_string

from portal import permissions

register = template.Library()

_WIDGET_CLASSES = {
    forms.Textarea: "nhsuk-textarea",
    forms.Select: "nhsuk-select",
    forms.SelectMultiple: "nhsuk-select",
    forms.ClearableFileInput: "nhsuk-file-upload",
    forms.FileInput: "nhsuk-file-upload",
    forms.CheckboxInput: "nhsuk-checkboxes__input",
}


def _widget_class(widget):
    for kind, css in _WIDGET_CLASSES.items():
        if isinstance(widget, kind):
            return css
    return "nhsuk-input"


@register.simple_tag
def nhs_field(field):
    """Render one bound field the NHS.UK way: label, hint, error message, then the control."""
    widget = field.field.widget
    if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
        kind = "choices"
    elif isinstance(widget, forms.CheckboxInput):
        kind = "checkbox"
    else:
        kind = "input"
    css = _widget_class(widget)
    if field.errors:
        css += f" {css.split()[0]}--error"
    attrs = {"class": css}
    if field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}-hint"
    return render_to_string(
        "portal/includes/field.html",
        {
            "field": field,
            "kind": kind,
            "control": field.as_widget(attrs=attrs) if kind != "choices" else "",
            "multiple": isinstance(widget, forms.CheckboxSelectMultiple),
        },
    )


_TAG_COLOURS = {
    "approved": "green",
    "active": "green",
    "pending": "yellow",
    "invited": "blue",
    "draft": "grey",
    "refused": "red",
    "revoked": "red",
    "lapsed": "orange",
    "suspended": "orange",
    "terminated": "grey",
    "withdrawn": "grey",
    "closed": "grey",
}


@register.inclusion_tag("portal/includes/status_tag.html")
def status_tag(status, label=None):
    return {"colour": _TAG_COLOURS.get(str(status), "grey"), "label": label or str(status).replace("_", " ")}


@register.filter
def can_govern(user, tre):
    return permissions.can_govern_tre(user, tre)


@register.filter
def get_item(mapping, key):
    """mapping[key] in a template, or None."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
