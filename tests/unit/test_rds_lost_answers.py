"""RDS calls whose first attempt AWS carried out but whose answer was lost (issue 18.1).

moto cannot lose an answer and renames at once, so a botocore Stubber plays AWS here: the
retried rename is answered DBInstanceNotFound / DBClusterNotFoundFault once the first attempt
renamed the database, or InvalidDBInstanceState while AWS is still renaming it (the original
then shows DBInstanceStatus ``renaming``).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from migrate.aws.session import AwsSession
from migrate.steps.rds import phases as ph


def _rds() -> Any:
    return AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9").client("rds")


def _instance(ident: str) -> dict[str, Any]:
    return {"DBInstances": [{"DBInstanceIdentifier": ident, "DBInstanceStatus": "renaming"}]}


def test_a_rename_retried_after_a_lost_answer_is_recognised_as_done() -> None:
    rds = _rds()
    with Stubber(rds) as stub:
        stub.add_client_error("modify_db_instance", "DBInstanceNotFound", http_status_code=404)
        stub.add_client_error("describe_db_instances", "DBInstanceNotFound", http_status_code=404)
        stub.add_response("describe_db_instances", _instance("orders-unencrypted-20261203"))
        ph.rename(rds, ph.INSTANCE, "orders", "orders-unencrypted-20261203")
        stub.assert_no_pending_responses()


def test_a_rename_of_a_database_that_is_gone_still_fails() -> None:
    """Not found, and the new name is not there either: nothing was renamed; say so."""
    rds = _rds()
    with Stubber(rds) as stub:
        stub.add_client_error("modify_db_cluster", "DBClusterNotFoundFault", http_status_code=404)
        stub.add_client_error(
            "describe_db_clusters", "DBClusterNotFoundFault", http_status_code=404
        )
        stub.add_client_error(
            "describe_db_clusters", "DBClusterNotFoundFault", http_status_code=404
        )
        with pytest.raises(ClientError, match="DBClusterNotFoundFault"):
            ph.rename(rds, ph.CLUSTER, "orders-aurora", "orders-aurora-unencrypted-20261203")


def test_a_retried_rename_that_aws_is_still_carrying_out_is_recognised_as_done() -> None:
    """AWS renames asynchronously: the retry meets the original still there, `renaming`, and is
    refused as InvalidDBInstanceState. That is the first attempt at work, not a failure."""
    rds = _rds()
    with Stubber(rds) as stub:
        stub.add_client_error("modify_db_instance", "InvalidDBInstanceState", http_status_code=400)
        stub.add_response("describe_db_instances", _instance("orders"))
        ph.rename(rds, ph.INSTANCE, "orders", "orders-unencrypted-20261203")
        stub.assert_no_pending_responses()


def test_a_rename_refused_for_another_modification_still_fails() -> None:
    """Busy with something else (not a rename): the refusal stands."""
    rds = _rds()
    busy = {"DBInstances": [{"DBInstanceIdentifier": "orders", "DBInstanceStatus": "modifying"}]}
    with Stubber(rds) as stub:
        stub.add_client_error("modify_db_instance", "InvalidDBInstanceState", http_status_code=400)
        stub.add_response("describe_db_instances", busy)
        with pytest.raises(ClientError, match="InvalidDBInstanceState"):
            ph.rename(rds, ph.INSTANCE, "orders", "orders-unencrypted-20261203")
