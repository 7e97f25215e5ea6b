"""Load the CTCAE v5.0 dictionary shipped in safety/data (837 terms)."""

from django.db import migrations


def load(apps, schema_editor):
    from safety.services import ctcae_dictionary_load

    ctcae_dictionary_load(apps.get_model("safety", "CtcaeTerm"))


def unload(apps, schema_editor):
    apps.get_model("safety", "CtcaeTerm").objects.filter(version="5.0").delete()


class Migration(migrations.Migration):
    dependencies = [("safety", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
