"""Load the CTCAE v5.0 dictionary shipped in safety/data (837 terms)."""

from django.db import migrations


def load(apps, schema_editor):
    from safety.ctcae import BUNDLED_CSV, load_ctcae

    CtcaeTerm = apps.get_model("safety", "CtcaeTerm")
    catalogue = load_ctcae(BUNDLED_CSV)
    CtcaeTerm.objects.bulk_create(
        [
            CtcaeTerm(
                version=t.version,
                meddra_code=t.meddra_code,
                soc=t.soc,
                term=t.term,
                **{f"grade_{g}": (t.grade_texts[g - 1] or "") for g in range(1, 6)},
                definition=t.definition or "",
                navigational_note=t.navigational_note or "",
            )
            for t in catalogue.terms
        ]
    )


def unload(apps, schema_editor):
    apps.get_model("safety", "CtcaeTerm").objects.filter(version="5.0").delete()


class Migration(migrations.Migration):
    dependencies = [("safety", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
