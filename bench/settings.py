"""Settings of the benchmark server: the project's settings plus the bare anchor view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
