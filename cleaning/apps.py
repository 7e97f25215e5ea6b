from django.apps import AppConfig


class CleaningConfig(AppConfig):
    name = "cleaning"
    verbose_name = "Data cleaning (queries and source data verification)"
