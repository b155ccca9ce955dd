"""The AWS floor: the only code that talks to boto3/botocore.

* :mod:`migrate.aws.session`: clients for the operator's profile, region and endpoint, with the
  dry-run guard and the journal hooks;
* :mod:`migrate.aws.errors`: botocore failures translated once (named predicates for not-found,
  access-denied, throttling, ...), and the one-paragraph message for an AWS failure;
* :mod:`migrate.aws.arns`: ARN parsing (one ``arn_region`` for the whole project);
* per-service modules (:mod:`~migrate.aws.kms`, :mod:`~migrate.aws.s3`, :mod:`~migrate.aws.rds`)
  of small functions that take clients and spell out the real API call.

Nothing here imports the engine or the steps; steps and the engine import from here.
"""
