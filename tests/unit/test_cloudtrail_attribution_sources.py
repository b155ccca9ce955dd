"""Attribution by (VPC endpoint, IP): IPv6 callers are looked up by their ENI's IPv6 address
(Stubber: moto's EC2 does not filter ENIs by ``ipv6-addresses.ipv6-address``)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from migrate.cloudtrail.attribution import CONF_UNIQUE, attribute_sources
from migrate.cloudtrail.model import ATTR_EC2

IPV6 = "2600:1f18:abcd:1200::10"


def test_an_ipv6_caller_is_attributed_to_the_instance_holding_the_address() -> None:
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(ec2)
    stub.add_response(
        "describe_network_interfaces",
        {
            "NetworkInterfaces": [
                {
                    "NetworkInterfaceId": "eni-0abc",
                    "VpcId": "vpc-prod",
                    "Ipv6Addresses": [{"Ipv6Address": IPV6}],
                    "Attachment": {"InstanceId": "i-0prod"},
                }
            ]
        },
        {"Filters": [{"Name": "ipv6-addresses.ipv6-address", "Values": [IPV6]}]},
    )
    stub.add_response(
        "describe_instances",
        {
            "Reservations": [
                {
                    "Instances": [
                        {"InstanceId": "i-0prod", "Tags": [{"Key": "Name", "Value": "prod-app"}]}
                    ]
                }
            ]
        },
        {"InstanceIds": ANY},
    )
    stub.activate()

    def client(region: str) -> Any:
        return ec2

    found = attribute_sources(client, ["us-east-1"], [(IPV6, "")])
    att = found[(IPV6, "")]
    assert (att.kind, att.confidence, att.instance_id) == (ATTR_EC2, CONF_UNIQUE, "i-0prod")
    assert att.confident
    stub.assert_no_pending_responses()
