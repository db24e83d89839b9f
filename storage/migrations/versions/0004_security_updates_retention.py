"""processed_update keyed per bot (bot_id, update_id), indexed by age for pruning;
contact.deactivated_at (retention: personal data erased N days after deactivation)

Update ids are a bot's own sequence: two bots (tokens) on one database both have an update 1.
The remembered ids are only a short duplicate window, so the table is recreated empty.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table('processed_update')
    op.create_table('processed_update',
    sa.Column('bot_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bot_id', 'update_id')
    )
    op.create_index(op.f('ix_processed_update_at'), 'processed_update', ['at'], unique=False)
    with op.batch_alter_table('contact') as batch:
        batch.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    # contacts deactivated before this version: their retention period starts now
    op.execute(sa.text("UPDATE contact SET deactivated_at = CURRENT_TIMESTAMP WHERE active = false"))


def downgrade() -> None:
    with op.batch_alter_table('contact') as batch:
        batch.drop_column('deactivated_at')
    op.drop_index(op.f('ix_processed_update_at'), table_name='processed_update')
    op.drop_table('processed_update')
    op.create_table('processed_update',
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('update_id')
    )
