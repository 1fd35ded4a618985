import django.db.models.deletion
import messaging.models
from django.db import migrations, models


def store_uncompressed(apps, schema_editor):
    # The chunks live minutes at most: compressing their arrays at the click cost as much
    # as writing them.
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE messaging_waitingchunk ALTER COLUMN subscriber_ids SET STORAGE EXTERNAL, "
        "ALTER COLUMN emails SET STORAGE EXTERNAL, ALTER COLUMN names SET STORAGE EXTERNAL, "
        "ALTER COLUMN locales SET STORAGE EXTERNAL")


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0009_delivery_ledger_without_row_checks'),
    ]

    operations = [
        migrations.CreateModel(
            name='WaitingChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('first_subscriber_id', models.BigIntegerField()),
                ('size', models.PositiveIntegerField()),
                ('subscriber_ids', messaging.models.ListColumn(base='bigint')),
                ('emails', messaging.models.ListColumn(base='text')),
                ('names', messaging.models.ListColumn(base='text')),
                ('locales', messaging.models.ListColumn(base='text')),
                ('claim_token', models.CharField(blank=True, max_length=64)),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('broadcast', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='messaging.broadcast')),
            ],
            options={
                'indexes': [models.Index(fields=['broadcast', 'first_subscriber_id'], name='waiting_chunk_order_idx')],
            },
        ),
        migrations.RunPython(store_uncompressed, migrations.RunPython.noop, elidable=True),
    ]
