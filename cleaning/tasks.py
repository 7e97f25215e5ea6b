"""Celery tasks: a few lines each that call a service. Safe to run twice."""

from celery import shared_task

from cleaning.services import query_sweep


@shared_task
def cleaning_query_sweep() -> dict[str, int]:
    """Raise the automatic queries the rules find and close the fixed ones (beat)."""
    result = query_sweep()
    return {"raised": result.raised, "closed": result.closed, "refused": result.refused}
