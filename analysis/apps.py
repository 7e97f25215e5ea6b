from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    label = "analysis"
    verbose_name = "Dose-finding designs and trial-level analyses"
