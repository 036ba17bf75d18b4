"""StateTransition moves to the core app: only Django's model state changes; the table stays as it is."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="StateTransition")],
            database_operations=[],
        ),
    ]
