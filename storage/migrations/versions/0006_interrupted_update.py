"""interrupted_update: updates a stop left unhandled, handled at the next start

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 05:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'interrupted_update',
        sa.Column('bot_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('bot_id', 'update_id'),
    )
    op.create_index(op.f('ix_interrupted_update_at'), 'interrupted_update', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_interrupted_update_at'), table_name='interrupted_update')
    op.drop_table('interrupted_update')
