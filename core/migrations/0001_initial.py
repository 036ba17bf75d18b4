"""The transition log, taken over from the experiments app: its table (``experiments_statetransition``) already
exists, so only Django's model state is created here."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('agents', '0001_initial'),
        ('experiments', '0002_statetransition_moves_to_core'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.CreateModel(
                name='StateTransition',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('entity', models.CharField(choices=[('experiment', 'Experiment'), ('job', 'Job'), ('attempt', 'Attempt'), ('agent', 'Agent')], max_length=20)),
                    ('from_state', models.CharField(blank=True, default='', max_length=20)),
                    ('to_state', models.CharField(max_length=20)),
                    ('reason', models.CharField(blank=True, default='', max_length=1000)),
                    ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                    ('agent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='transitions', to='agents.agent')),
                    ('attempt', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='transitions', to='experiments.jobattempt')),
                    ('experiment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='transitions', to='experiments.experiment')),
                    ('job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='transitions', to='experiments.job')),
                ],
                options={
                    'db_table': 'experiments_statetransition',
                    'ordering': ['created_at', 'id'],
                    'indexes': [models.Index(fields=['job', 'created_at'], name='transition_job_idx'), models.Index(fields=['agent', 'created_at'], name='transition_agent_idx')],
                },
            ),
            ],
            database_operations=[],
        ),
    ]
