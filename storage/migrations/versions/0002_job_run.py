"""job_run: days a scheduled job has done (catch-up after downtime)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_run',
    sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('job', 'day')
    )


def downgrade() -> None:
    op.drop_table('job_run')
