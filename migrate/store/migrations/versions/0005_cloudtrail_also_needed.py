"""cloudtrail_resources: the IAM actions a call's request parameters add ({action: last day})

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cloudtrail_resources") as batch:
        batch.add_column(sa.Column("also", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cloudtrail_resources") as batch:
        batch.drop_column("also")
