"""Results are scored off the request path: a scoring status on each result (existing results were scored on arrival)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0003_manage_any_experiment'),
        ('results', '0005_statistics_scope'),
    ]

    operations = [
        migrations.AddField(
            model_name='jobresult',
            name='scored_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='jobresult',
            name='scoring_error',
            field=models.TextField(blank=True, default=''),
        ),
        # Rows stored before this migration were scored when they arrived: they start as "scored"; new rows then
        # default to "scoring".
        migrations.AddField(
            model_name='jobresult',
            name='scoring_status',
            field=models.CharField(choices=[('scoring', 'Scoring'), ('scored', 'Scored'), ('failed', 'Failed')],
                                   default='scored', max_length=10),
        ),
        migrations.AlterField(
            model_name='jobresult',
            name='scoring_status',
            field=models.CharField(choices=[('scoring', 'Scoring'), ('scored', 'Scored'), ('failed', 'Failed')],
                                   default='scoring', max_length=10),
        ),
        migrations.AddIndex(
            model_name='jobresult',
            index=models.Index(condition=models.Q(('scoring_status', 'scoring')), fields=['id'],
                               name='result_scoring_queue_idx'),
        ),
    ]
