"""The drill's isolated network: a DB subnet group and a security group of its own.

A restored copy must never answer on the production network paths: it gets a subnet group and a
security group the drill creates (or the operator gives), never the production ones. The security
group created here has no ingress rule except the CIDRs the operator allows for the check command,
and no egress rule at all (a copy of production must not call out: it may hold jobs or links).
Names are deterministic from the run id, so a resumed drill finds what it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.aws.errors import already_exists, has_code, or_default
from migrate.aws.rds_restore import describe_subnet_group
from migrate.aws.tags import tag_dict
from migrate.engine.context import StepContext
from migrate.errors import StepFailed

TAG_DR_TEST = "migrate:dr-test"
DEPENDENCY = ("DependencyViolation", "InvalidDBSubnetGroupStateFault")


def network_name(run_hash: str) -> str:
    """``migrate-dr-<hash>``: the name of the drill's subnet group and security group."""
    return f"migrate-dr-{run_hash}"


@dataclass(frozen=True)
class Network:
    """Where a drill restores: the subnet group and security groups to pass."""

    subnet_group: str
    security_group_ids: list[str]


@dataclass
class IsolatedNetwork:
    """Creates and removes the drill's own network pieces in one region (explicit collaborator).

    ``production`` is the production subnet group's description: its VPC and (unless the operator
    gives ``subnet_ids``) its subnets are used, so the copy sits in the same AZs without sharing
    the group.
    """

    ctx: StepContext
    region: str
    run_id: str
    run_hash: str

    @property
    def name(self) -> str:
        """The deterministic name of both pieces."""
        return network_name(self.run_hash)

    def _tags(self) -> list[dict[str, str]]:
        return [{"Key": TAG_DR_TEST, "Value": self.run_id}, {"Key": "Name", "Value": self.name}]

    def find_security_group(self, ec2: Any, vpc_id: str | None = None) -> dict[str, Any] | None:
        """This run's security group (looked up by name and tag), or None."""
        filters = [
            {"Name": "group-name", "Values": [self.name]},
            {"Name": f"tag:{TAG_DR_TEST}", "Values": [self.run_id]},
        ]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        groups = ec2.describe_security_groups(Filters=filters).get("SecurityGroups", [])
        return dict(groups[0]) if groups else None

    def ensure(
        self, production: dict[str, Any], subnet_ids: list[str], allow_cidrs: list[str], port: int
    ) -> Network:
        """Look before create: the run's subnet group and security group, created if missing."""
        rds = self.ctx.client("rds", self.region)
        ec2 = self.ctx.client("ec2", self.region)
        vpc_id = str(production["VpcId"])
        group = self.find_security_group(ec2, vpc_id)
        if group is None:
            # Recorded before it exists: a crash between the call and the record still gets
            # the group torn down (teardown looks it up by name and tag).
            self.ctx.record_resource(
                "ec2:security-group", self.name, region=self.region, details={"vpc": vpc_id}
            )
            try:
                created = ec2.create_security_group(
                    GroupName=self.name,
                    Description=f"migrate DR drill {self.run_id}: isolated, no egress",
                    VpcId=vpc_id,
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": self._tags()}],
                )
            except Exception as exc:
                if not has_code(exc, "InvalidGroup.Duplicate"):
                    raise
                found = self.find_security_group(ec2, vpc_id)
                if found is None:
                    raise StepFailed(
                        f"a security group named {self.name} exists in {vpc_id} but is not this "
                        "drill's (no migrate:dr-test tag); rename or delete it and resume."
                    ) from None
                created = found
            group_id = str(created["GroupId"])
            self._isolate(ec2, group_id, allow_cidrs, port)
        else:
            group_id = str(group["GroupId"])
        self.ctx.record_resource(
            "ec2:security-group",
            self.name,
            region=self.region,
            details={"vpc": vpc_id, "group_id": group_id},
        )
        if describe_subnet_group(rds, self.name) is None:
            self.ctx.record_resource("rds:subnet-group", self.name, region=self.region)
            subnets = subnet_ids or [str(s["SubnetIdentifier"]) for s in production["Subnets"]]
            try:
                rds.create_db_subnet_group(
                    DBSubnetGroupName=self.name,
                    DBSubnetGroupDescription=f"migrate DR drill {self.run_id} (isolated copy)",
                    SubnetIds=subnets,
                    Tags=self._tags(),
                )
            except Exception as exc:
                if not (already_exists(exc) or has_code(exc, "DBSubnetGroupAlreadyExists")):
                    raise
        return Network(subnet_group=self.name, security_group_ids=[group_id])

    @staticmethod
    def _isolate(ec2: Any, group_id: str, allow_cidrs: list[str], port: int) -> None:
        # AWS gives a new group an allow-all egress rule; a copy of production calls nowhere.
        or_default(
            lambda: ec2.revoke_security_group_egress(
                GroupId=group_id,
                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            ),
            None,
            lambda exc: has_code(exc, "InvalidPermission.NotFound"),
        )
        if allow_cidrs:
            or_default(
                lambda: ec2.authorize_security_group_ingress(
                    GroupId=group_id,
                    IpPermissions=[
                        {
                            "IpProtocol": "tcp",
                            "FromPort": port,
                            "ToPort": port,
                            "IpRanges": [{"CidrIp": c} for c in allow_cidrs],
                        }
                    ],
                ),
                None,
                lambda exc: has_code(exc, "InvalidPermission.Duplicate"),
            )

    def _note(self, kind: str) -> None:
        # Rollback runs outside an action: nothing to record against there.
        if self.ctx.action_id is not None:
            self.ctx.record_resource(kind, self.name, change="deleted", region=self.region)

    def remove(self) -> list[str]:
        """Delete the subnet group and the security group; returns what still exists (AWS keeps
        a security group while the deleted instance's network interfaces linger)."""
        rds = self.ctx.client("rds", self.region)
        ec2 = self.ctx.client("ec2", self.region)
        left: list[str] = []
        group = describe_subnet_group(rds, self.name)
        if group is not None:
            if (
                tag_dict(
                    rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"]).get(
                        "TagList"
                    )
                ).get(TAG_DR_TEST)
                != self.run_id
            ):
                raise StepFailed(
                    f"the DB subnet group {self.name} is not tagged {TAG_DR_TEST}={self.run_id}; "
                    "not deleting it. Delete it by hand if it is a leftover of this drill."
                )
            try:
                rds.delete_db_subnet_group(DBSubnetGroupName=self.name)
            except Exception as exc:
                if not has_code(exc, *DEPENDENCY):
                    raise
                left.append(f"subnet group {self.name}")
            self._note("rds:subnet-group")
        sg = self.find_security_group(ec2)
        if sg is not None:
            try:
                ec2.delete_security_group(GroupId=sg["GroupId"])
                self._note("ec2:security-group")
            except Exception as exc:
                if not has_code(exc, *DEPENDENCY):
                    raise
                left.append(f"security group {sg['GroupId']}")
        if describe_subnet_group(rds, self.name) is not None:
            left.append(f"subnet group {self.name}")
        return sorted(set(left))
