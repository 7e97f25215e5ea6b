"""The filter backend of every API list (settings REST_FRAMEWORK DEFAULT_FILTER_BACKENDS).

django-filter's default for a foreign key (``?trial=``, ``?site=``, ``?patient=``) is a
choice field that looks the id up: an id naming no record was a 400 "Select a valid
choice" though the OpenAPI document says any integer, and the lookup itself was the only
guard against a 25-digit id. Here an id filter is a whole number from 1 to MAX_ID
(anything else a 400 naming the parameter, documented with those bounds) and an id that
names nothing matches nothing: an empty list, as for any filter (issue 16 items 12, 15).
"""

from typing import Any

from django import forms
from django.db import models
from django_filters import filters, filterset
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from drf_spectacular.utils import extend_schema_field

from core.query_params import MAX_ID


class IdField(forms.IntegerField):
    """A parameter left out filters nothing; a parameter given blank (``?patient=``) is a 400,
    as the document says an integer."""

    def to_python(self, value: Any) -> int | None:
        if value == "":
            raise forms.ValidationError(
                "A whole number is expected here, not a blank; leave the parameter out instead."
            )
        return super().to_python(value)  # type: ignore[no-any-return]


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    field_class = IdField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilterSet(FilterSet):
    FILTER_DEFAULTS = {
        **filterset.FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.AutoField: {"filter_class": IdFilter},
        models.BigAutoField: {"filter_class": IdFilter},
    }


class FilterBackend(DjangoFilterBackend):
    filterset_base = IdFilterSet
