"""Celery tasks of the exchange app: a few lines each, fetch by id, call a service. Safe to run twice."""

from celery import shared_task

from exchange.services import cdisc_package_build


@shared_task(acks_late=True)
def cdisc_package_build_task(package_id: int) -> str:
    # No retry: a build error is written on the job ("failed", with the message) and a new
    # request starts a new version; a lost worker's task is redelivered (acks late) and
    # the build claims the job again (exchange.services.cdisc_package_build).
    return cdisc_package_build(package_id)
