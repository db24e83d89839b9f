"""processed_update keyed per bot (bot_id, update_id), indexed by age for pruning

Update ids are a bot's own sequence: two bots (tokens) on one database both have an update 1.
The remembered ids are only a short duplicate window, so the table is recreated empty.

Revision ID: 0003_security
Revises: 0002
Create Date: 2026-12-04 05:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_security'
down_revision = '0002'
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


def downgrade() -> None:
    op.drop_index(op.f('ix_processed_update_at'), table_name='processed_update')
    op.drop_table('processed_update')
    op.create_table('processed_update',
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('update_id')
    )
