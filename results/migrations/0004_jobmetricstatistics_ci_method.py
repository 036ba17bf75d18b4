# Rows stored before this migration hold Student's t intervals: they are labelled so.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('results', '0003_jobresult_benchmark'),
    ]

    operations = [
        migrations.AddField(
            model_name='jobmetricstatistics',
            name='ci_method',
            field=models.CharField(blank=True, default='student_t', max_length=30),
            preserve_default=False,
        ),
    ]
