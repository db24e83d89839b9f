"""reporters per measure (YAML list and an admin's override), app settings, reopened periods

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('measure') as batch:
        batch.add_column(sa.Column('reporters', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('reporters_override', sa.JSON(), nullable=True))
    with op.batch_alter_table('measure') as batch:
        batch.alter_column('reporters', server_default=None)
    op.create_table('app_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('period_reopening',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('until', sa.Date(), nullable=False),
    sa.Column('reopened_by_contact_id', sa.Integer(), nullable=True),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['reopened_by_contact_id'], ['contact.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('institution_id', 'year')
    )
    op.create_index(op.f('ix_period_reopening_institution_id'), 'period_reopening', ['institution_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_period_reopening_institution_id'), table_name='period_reopening')
    op.drop_table('period_reopening')
    op.drop_table('app_setting')
    with op.batch_alter_table('measure') as batch:
        batch.drop_column('reporters_override')
        batch.drop_column('reporters')
