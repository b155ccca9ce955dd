"""``secrets.from_configs``: credentials in config files -> Secrets Manager, files rewritten reversibly."""

from __future__ import annotations

import fnmatch
import glob
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from migrate.aws.errors import has_code, not_found
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import KeyResolver, check_usable_key
from migrate.configs import detect_format, detectors, envfile
from migrate.configs.scan import (
    FileScan,
    SecretGroup,
    canonical,
    credential_values,
    scan_bytes,
    scan_file,
)
from migrate.configs.textio import (
    Fingerprinter,
    atomic_write,
    backup_path,
    file_mode,
    write_backup,
)
from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import ParamError, StepFailed
from migrate.steps.secrets.ownership import (
    TAG_MANAGED,
    TAG_SOURCE,
    Owner,
    conflict,
    local_host,
    owner_tags,
    path_label,
    tag_value,
)

log = logging.getLogger("migrate.steps.secrets.from_configs")

TAG_RUN = "migrate:run"
SKIP_DIRS = {".git", ".svn", ".hg", "node_modules", "__pycache__", ".venv"}
# Namespace of the deterministic ClientRequestTokens (the idempotency keys of Secrets Manager).
_TOKEN_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://migrate.invalid/secrets.from_configs")
NEEDS = {
    "jdbc-wrapper": "Tomcat needs the AWS Secrets Manager JDBC driver wrapper "
    "(com.amazonaws.secretsmanager:aws-secretsmanager-jdbc, with the AWS SDK and the real JDBC "
    "driver) in $CATALINA_BASE/lib, and its role needs secretsmanager:GetSecretValue on the "
    "secret and kms:Decrypt on the key; restart Tomcat to apply",
    "spring-import": "the application needs Spring Cloud AWS Secrets Manager "
    "(io.awspring.cloud:spring-cloud-aws-starter-secrets-manager, Spring Boot 2.4+) and a role "
    "with secretsmanager:GetSecretValue and kms:Decrypt; restart it to apply",
    "remove": "the process must load the secret into its environment at start-up (the "
    "comment left in the file shows a command); until then the variables are missing",
    "placeholder": "something must supply each placeholder at start-up (environment, "
    "system property or deploy tooling), reading the secret; until then the app sees the "
    "placeholder text",
}


class RewriteStyles(StepParams):
    """How each format is rewritten (see docs/steps/secrets.from_configs.md)."""

    xml: Literal["jdbc-wrapper", "placeholder"] = "jdbc-wrapper"
    # auto: spring-import for files Spring Boot reads (application*, bootstrap*, spring.* keys),
    # refused for any other (nothing would read the import: the app would lose its password).
    properties: Literal["auto", "spring-import", "placeholder", "refuse"] = "auto"
    yaml: Literal["auto", "spring-import", "placeholder", "refuse"] = "auto"
    env: Literal["remove", "placeholder"] = "remove"
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # ``json`` would shadow BaseModel.json; the playbook still writes ``json:``.
    # Nothing expands a reference in an INI or JSON file by itself: refused unless the playbook
    # says the application (or its deploy tooling) expands ${...} placeholders there.
    json_files: Literal["refuse", "placeholder"] = Field(default="refuse", alias="json")
    ini: Literal["refuse", "placeholder"] = "refuse"
    # Read literally by libpq / curl: no reference would be expanded, so their rewrite is refused.
    pgpass: Literal["refuse"] = "refuse"
    netrc: Literal["refuse"] = "refuse"
    mycnf: Literal["refuse"] = "refuse"


class ConfigSecretsParams(StepParams):
    """Parameters of ``secrets.from_configs``."""

    paths: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    kms_key: str = Field(min_length=1)
    # Unique across hosts: the host, the path below the scanned root, the resource in the file.
    name_template: str = Field(default="<host>/<path>/<resource>", min_length=1)
    host: str | None = Field(default=None, min_length=1)
    # Several hosts' copies in one run: the host of each `paths` entry (as written there).
    hosts: dict[str, str] = Field(default_factory=dict)
    # How the application reads .properties: java.util.Properties and Spring Boot use ISO-8859-1.
    properties_encoding: Literal["iso-8859-1", "utf-8"] = "iso-8859-1"
    placeholder: str = Field(default="${<env>}", min_length=1)
    rewrite: RewriteStyles = Field(default_factory=RewriteStyles)
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = "Credential moved out of a config file by migrate"
    region: str | None = None
    max_file_bytes: int = Field(default=1_048_576, gt=0)
    rollback_deletes_secrets: bool = False
    recovery_window_days: int = Field(default=7, ge=7, le=30)


def _excluded(path: Path, patterns: list[str]) -> bool:
    text = str(path)
    return any(fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(path.name, p) for p in patterns)


def _glob_root(expanded: str) -> Path:
    """The directory a glob starts from: its longest leading part without wildcards."""
    parts = Path(expanded).parts
    fixed = [p for p in parts[: next((i for i, p in enumerate(parts) if glob.has_magic(p)), 0)]]
    return Path(*fixed).absolute() if fixed else Path.cwd()


def discover(
    paths: list[str], exclude: list[str]
) -> tuple[dict[Path, tuple[Path, str]], list[str]]:
    """Files named by ``paths`` (files, directories walked recursively, globs), minus ``exclude``,
    each with the root it was found under and the ``paths`` entry that found it, and the entries that matched nothing
    (reported, not fatal: the plan shows them).

    The root is the directory named (for a directory), the file's directory (for a file) or the
    glob's fixed leading part; ``<path>`` in names and the owner tags are relative to it. A file
    found under several entries keeps the first one's root. Files named explicitly are kept
    whatever their name (and reported if not a known format); inside directories and globs only
    files of a known format are taken.
    """
    found: dict[Path, tuple[Path, str]] = {}
    missing: list[str] = []
    for spec in paths:
        expanded = os.path.expanduser(spec)
        magic = glob.has_magic(expanded)
        matches = sorted(glob.glob(expanded, recursive=True)) if magic else [expanded]
        if not any(Path(m).exists() or Path(m).is_symlink() for m in matches):
            missing.append(spec)
            continue
        glob_root = _glob_root(expanded) if magic else None
        for match in matches:
            path = Path(match).absolute()
            if path.is_dir() and not path.is_symlink():
                for root, dirs, files in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                    for name in files:
                        child = Path(root) / name
                        if detect_format(child) and ".migrate-tmp" not in name:
                            found.setdefault(child, (glob_root or path, spec))
            elif not (magic and detect_format(path) is None):
                found.setdefault(path, (glob_root or path.parent, spec))
    kept = {p: found[p] for p in sorted(found) if not _excluded(p, exclude)}
    return kept, missing


@step("secrets.from_configs")
class ConfigSecrets(Step):
    """Move credentials from config files into Secrets Manager and rewrite the files to refer to them.

    Scans ``paths`` (files, directories, globs) with a reader per format: XML attributes and
    element text (Tomcat ``<Resource>`` with JDBC URLs, ``tomcat-users.xml``, Maven
    ``settings.xml``), Java ``.properties``, ``.env``, YAML (Spring, anchors), JSON and INI.
    Credentials are found by key name and by value shape (detect-secrets' regex plugins on each
    decoded value, plus our own JDBC URL and key shapes); references (``${VAR}``, ``{{resolve:...}}``), placeholders and empty values are reported as
    near-misses, never moved. Each group of credentials becomes one secret (a JDBC resource in the
    RDS JSON shape) named from ``name_template``, encrypted with ``kms_key``. Per file, one action
    stores the secrets (idempotent: same value, no new version) and a gated cut-over action
    rewrites the file atomically in the format's style, after a byte-exact backup (0600) under
    the state directory. ``migrate rollback`` restores every file byte for byte (and deletes the
    secrets the run created only with ``rollback_deletes_secrets``). Values never reach the state
    DB, plans, logs or errors: they are shown as keyed fingerprints (HMAC).
    """

    Params = ConfigSecretsParams
    action_kinds = ("secrets.store", "config.rewrite")
    permissions = (
        "secretsmanager:DescribeSecret",
        "secretsmanager:CreateSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecret",
        "secretsmanager:RestoreSecret",
        "secretsmanager:TagResource",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DeleteSecret",
        "kms:DescribeKey",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    )
    outputs = ("secret_names", "secret_arns", "files", "secrets_by_host")
    example = """\
- id: config-secrets
  uses: secrets.from_configs
  with:
    paths: ["configs/"]
    exclude: ["*.bak"]
    kms_key: "{{ steps.kms.key_arn }}"
    name_template: "legacy/prod/<host>/<path>/<resource>"
    rewrite:
      xml: jdbc-wrapper
      properties: spring-import
"""
    params: ConfigSecretsParams

    def permission_scopes(self) -> list[Scope]:
        """Secrets are created only with migrate's tag, and written, read, restored or deleted
        only when they carry it (a same-named secret of anyone else is refused while planning;
        IAM refuses it too)."""
        tag = f"aws:ResourceTag/{TAG_MANAGED}"
        return [
            Scope(
                ("secretsmanager:CreateSecret", "secretsmanager:TagResource"),
                condition={"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": "migrate"}},
            ),
            Scope(
                (
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecret",
                    "secretsmanager:RestoreSecret",
                    "secretsmanager:UpdateSecretVersionStage",
                    "secretsmanager:DeleteSecret",
                ),
                condition={"StringEquals": {tag: "migrate"}},
            ),
        ]

    # -- helpers -----------------------------------------------------------------------------------
    def _region(self, ctx: StepContext) -> str:
        return self.params.region or ctx.regions[0]

    def _styles(self) -> dict[str, str]:
        return dict(self.params.rewrite.model_dump(by_alias=True))

    def _source(self, path: Path, root: Path, spec: str) -> dict[str, str | None]:
        """Where a file sits: host, root (only when no host is named for it: then the root tells
        two copies on this machine apart), path relative to the root."""
        named = self.params.hosts.get(spec) or self.params.host
        return {
            "host": named or local_host(),
            "root": None if named else str(root),
            "path": path_label(root, path),
        }

    def _scan(self, path: Path, source: dict[str, str | None]) -> FileScan:
        return scan_file(
            path,
            self._styles(),
            self.params.name_template,
            self.params.placeholder,
            self.params.max_file_bytes,
            source["path"],
            str(source["host"]),
            self.params.properties_encoding,
        )

    def _rescan(self, path: Path, data: bytes, fmt: str, source: dict[str, Any] | None) -> FileScan:
        source = source or {}
        return scan_bytes(
            path,
            data,
            fmt,
            self._styles()[fmt],
            self.params.name_template,
            self.params.placeholder,
            source.get("path"),
            str(source.get("host") or self.params.host or local_host()),
            self.params.properties_encoding,
        )

    @staticmethod
    def _fingerprinter(ctx: StepContext) -> Fingerprinter:
        return Fingerprinter.for_state_dir(ctx.state_dir)

    # -- observe / decide --------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """Scan the files (read-only) and look up each secret name (DescribeSecret)."""
        fp = self._fingerprinter(ctx)
        files: dict[str, Any] = {}
        owners: dict[str, list[tuple[str, str]]] = {}
        found, missing = discover(self.params.paths, self.params.exclude)
        named = [spec for spec in missing if not glob.has_magic(os.path.expanduser(spec))]
        if named:
            raise ParamError(
                f"{', '.join(named)}: no such file or directory (relative paths start at the "
                f"working directory, {Path.cwd()}). Fix the path, run migrate on the host that "
                "has the file, or use a glob: a glob that matches nothing is only a warning.",
                "paths",
            )
        for spec in missing:
            log.warning("secrets.from_configs: the glob %s matches nothing", spec)
        for path in ctx.progress(list(found), desc="configs"):
            source = self._source(path, *found[path])
            scan = self._scan(path, source)
            facts = scan.facts(fp)
            facts["source"] = source
            try:
                facts["mode"] = f"{file_mode(path):04o}"
            except OSError:
                facts["mode"] = None
            files[str(path)] = facts
            if scan.error:
                log.warning("%s: %s", path, scan.error)
            for secret in facts["secrets"]:
                owners.setdefault(secret["name"], []).append((str(path), secret["fp"]))
        if ctx.is_known(self.params.kms_key) and not self.params.kms_key.startswith("alias/aws/"):
            check_usable_key(ctx, self.params.kms_key, [self._region(ctx)], "secretsmanager")
        sm = ctx.client("secretsmanager", self._region(ctx))
        secrets = {name: self._describe(sm, name) for name in sorted(owners)}
        for name, places in owners.items():
            secrets[name]["files"] = sorted({p for p, _ in places})
            secrets[name]["conflict"] = len({f for _, f in places}) > 1
        warnings = [
            f"{spec}: the glob matches nothing; check `paths` (relative paths start at the "
            "working directory)"
            for spec in missing
        ]
        ds_version = detectors.version()
        if ds_version is None:
            warnings.append(
                "detect-secrets is not installed: values are matched against migrate's own, "
                "smaller set of token shapes (pip install detect-secrets)"
            )
        warnings += [f"{p}: {f['error']}" for p, f in files.items() if f["error"]]
        warnings += [
            f"{p}:{n['line']}: {n['key']}: {n['reason']}"
            for p, f in files.items()
            for n in f["near_misses"]
        ]
        return {
            "files": files,
            "secrets": secrets,
            "kms_key": self.params.kms_key,
            "region": self._region(ctx),
            "missing_paths": missing,
            # Which detector classified the values: another version may classify differently,
            # so a plan made with one is stale under another.
            "value_detectors": f"detect-secrets {ds_version}" if ds_version else "built-in",
            "warnings": warnings,
            # Compliant only when no reader and no value shape flags anything (a credential in
            # an XML comment is still a credential in plain text).
            "compliant": sorted(p for p, f in files.items() if f["compliant"]),
        }

    @staticmethod
    def _describe(sm: Any, name: str) -> dict[str, Any]:
        try:
            desc = sm.describe_secret(SecretId=name)
        except Exception as exc:
            if not_found(exc):
                return {"exists": False}
            raise
        tags = {t["Key"]: t.get("Value", "") for t in desc.get("Tags", [])}
        return {
            "exists": True,
            "arn": desc["ARN"],
            "kms_key_id": desc.get("KmsKeyId"),
            "deleted": bool(desc.get("DeletedDate")),
            "managed": tags.get(TAG_MANAGED) == "migrate",
            # Who the secret belongs to: an app elsewhere may read it (see decide).
            "tags": {
                k: v
                for k, v in sorted(tags.items())
                if k in (TAG_MANAGED, TAG_SOURCE) or k in owner_tags(tags)
            },
        }

    @staticmethod
    def _owners(facts: Facts) -> dict[str, tuple[Owner, str]]:
        """Per secret name, the source that owns it in this plan (and that source's file).

        The same credential in several files shares one secret: its owner is the first file in
        path order, and the others write it under that owner.
        """
        owners: dict[str, tuple[Owner, str]] = {}
        for path, info in sorted(facts["files"].items()):
            for s in info.get("secrets", []):
                if s["name"] not in owners and info.get("source"):
                    owner = Owner.of({**info["source"], "resource": s["resource"]})
                    owners[s["name"]] = (owner, path)
        return owners

    def _ownership_errors(self, facts: Facts) -> list[str]:
        """Existing secrets this plan would write although another source (or no migrate) owns
        them."""
        problems = []
        for name, (owner, path) in sorted(self._owners(facts).items()):
            state = facts["secrets"].get(name, {})
            if not state.get("exists"):
                continue
            why = conflict(state.get("tags", {}), owner, path)
            if why:
                problems.append(
                    f"the secret {name!r} already exists and {why}; this plan would store the "
                    f"credentials of {owner.describe()} in it"
                )
        return problems

    def _tell_apart_hint(self) -> str:
        """How to give two files' credentials different names, for what the template lacks."""
        template = self.params.name_template
        missing = [p for p in ("<host>", "<path>") if p not in template]
        if missing:
            return f"Add {' and '.join(missing)} to name_template, then plan again."
        return (
            "name_template has <host> and <path> already: the files are copies of different "
            "hosts' files under one path. Name each `paths` entry's host in `hosts:` (e.g. "
            "hosts: {/mnt/web-1: web-1}), then plan again."
        )

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Per file with credentials: store its secrets, then (gated cut-over) rewrite it."""
        conflicts = [n for n, s in facts["secrets"].items() if s.get("conflict")]
        if conflicts:
            name = conflicts[0]
            raise StepFailed(
                f"secrets.from_configs: the secret name {name!r} is produced for different "
                f"credentials in {', '.join(facts['secrets'][name]['files'])}. "
                + self._tell_apart_hint()
            )
        problems = self._ownership_errors(facts)
        if problems:
            raise StepFailed(
                "secrets.from_configs: "
                + "; ".join(problems)
                + ". A secret another application reads is never given a new version by a "
                "migration of a different source: make name_template unique (the default "
                "<host>/<path>/<resource> is; set `host:` per host), or remove or rename the "
                "existing secret if it is no longer used, then plan again."
            )
        owners = self._owners(facts)
        actions: list[Action] = []
        for path, info in sorted(facts["files"].items()):
            if info["error"] or not info["secrets"]:
                continue
            style = info["style"]
            misses = [
                f"line {n['line']}: {n['key']}: {n['reason']} (not moved)"
                for n in info["near_misses"]
            ]
            names = [s["name"] for s in info["secrets"]]
            store_summary = []
            risks = list(misses)
            for s in info["secrets"]:
                state = facts["secrets"].get(s["name"], {})
                verb = "create"
                if state.get("exists"):
                    verb = "restore and update" if state.get("deleted") else "update if changed"
                store_summary.append(f"{s['name']} ({verb}; {s['shape']}; {s['fp']})")
            common = {
                "file": path,
                "format": info["format"],
                "style": style,
                "fp": info["fp"],
                "rewritten_fp": info["rewritten_fp"],
                "source": info.get("source"),
                "secrets": [
                    {
                        "name": s["name"],
                        "fp": s["fp"],
                        "keys": s["keys"],
                        "owner": owners[s["name"]][0].as_json(),
                        "owner_file": owners[s["name"]][1],
                    }
                    for s in info["secrets"]
                ],
            }
            actions.append(
                Action(
                    kind="secrets.store",
                    target=path,
                    summary=f"store credentials of {path} in Secrets Manager: "
                    + ", ".join(store_summary),
                    estimate=Estimate(
                        duration_s=1.0 * len(names),
                        api_requests=3 * len(names),
                        monthly_usd=0.40 * len(names),
                    ),
                    risks=(
                        *risks,
                        f"encrypted with {self.params.kms_key}: readers need kms:Decrypt through "
                        "Secrets Manager",
                    ),
                    region=facts["region"],
                    details=common,
                )
            )
            lines = sorted({f["line"] for f in info["findings"]})
            actions.append(
                Action(
                    kind="config.rewrite",
                    target=path,
                    summary=f"rewrite {path} ({style}): line(s) {', '.join(map(str, lines))} -> "
                    + ", ".join(names)
                    + " (backup kept; rollback restores it)",
                    estimate=Estimate(duration_s=0.1),
                    risks=(
                        NEEDS.get(style, NEEDS["placeholder"]),
                        *info.get("app_needs", []),
                        *_loader_lines(style, names),
                        *_file_risks(path),
                        # Feeds iam.keys_to_roles: the app's role, not migrate's, reads these.
                        "the role the application runs as needs secretsmanager:GetSecretValue on "
                        + ", ".join(names)
                        + f" and kms:Decrypt on {self.params.kms_key}",
                    ),
                    gate="config-cutover",
                    destructive=True,
                    region=facts["region"],
                    details={**common, "mode": info.get("mode")},
                )
            )
        return actions

    # -- act ---------------------------------------------------------------------------------------
    def _checked(
        self, ctx: StepContext, action: Action
    ) -> tuple[Any, Path, FileScan, dict[str, SecretGroup]]:
        """The file as planned (from the byte-exact backup), or StepFailed if it changed."""
        if not ctx.is_known(self.params.kms_key):
            raise StepFailed(
                f"the KMS key for {action.target} is still {self.params.kms_key}; run the step "
                "that creates it first."
            )
        fp = self._fingerprinter(ctx)
        details = action.details
        path = Path(details["file"])
        original = self._original(ctx, fp, path, details["fp"])
        scan = self._rescan(path, original, details["format"], details.get("source"))
        if scan.error:
            raise StepFailed(f"{path}: {scan.error}. The file is left untouched.")
        groups = {g.name: g for g in scan.groups}
        for planned in details["secrets"]:
            group = groups.get(planned["name"])
            if group is None or fp.value(group.secret_string()) != planned["fp"]:
                raise StepFailed(
                    f"{path}: the credentials for {planned['name']} differ from the plan (was the "
                    "name_template or the file changed?). Plan again."
                )
        return fp, path, scan, groups

    @handles("secrets.store")
    def _store(self, ctx: StepContext, action: Action) -> None:
        """Store the file's credentials in Secrets Manager."""
        fp, path, _, groups = self._checked(ctx, action)
        sm = ctx.client("secretsmanager", action.region or self._region(ctx))
        for planned in action.details["secrets"]:
            owner = Owner.of(planned["owner"])
            self._ensure_secret(
                ctx, sm, fp, groups[planned["name"]], owner, planned.get("owner_file", str(path))
            )

    @handles("config.rewrite")
    def _rewrite_file(self, ctx: StepContext, action: Action) -> None:
        """Rewrite the file to reference the stored secrets."""
        fp, path, scan, _ = self._checked(ctx, action)
        self._rewrite(ctx, fp, path, scan, action.details)

    def _original(self, ctx: StepContext, fp: Fingerprinter, path: Path, expected: str) -> bytes:
        """The file as planned: from this run's backup, or read (and backed up) now."""
        assert ctx.run_id is not None
        backup = backup_path(ctx.state_dir, ctx.run_id, path)
        if backup.exists():
            data = backup.read_bytes()
            if fp.data(data) != expected:
                raise StepFailed(
                    f"the backup {backup} of {path} does not match the plan (damaged or "
                    "replaced). Check it by hand; the file itself was not changed by this action."
                )
            return data
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StepFailed(f"cannot read {path} ({exc.strerror}); the file is untouched.")
        if fp.data(data) != expected:
            raise StepFailed(
                f"{path} changed since the plan; nothing was written. Plan again (`migrate "
                "plan`) to review the new content, then run."
            )
        write_backup(backup, data)
        return data

    def _ensure_secret(
        self,
        ctx: StepContext,
        sm: Any,
        fp: Fingerprinter,
        group: SecretGroup,
        owner: Owner,
        owner_file: str,
    ) -> None:
        """Create the secret, or bring it to the payload and key without a needless version.

        An existing secret is written only when it is migrate's and ``owner``'s (checked again
        here: the secret may have appeared since the plan). Before a new version moves
        AWSCURRENT, the version it moves from is recorded, so rollback can move it back.
        """
        name = group.name
        value = group.secret_string()
        value_fp = fp.value(value)
        token = str(uuid.uuid5(_TOKEN_NS, f"{ctx.run_id}|{name}|{value_fp}"))
        key = self.params.kms_key
        try:
            desc = sm.describe_secret(SecretId=name)
        except Exception as exc:
            if not not_found(exc):
                raise
            desc = None
        if desc is None:
            new_tags = {
                TAG_MANAGED: "migrate",
                TAG_RUN: ctx.run_id or "",
                TAG_SOURCE: tag_value(owner_file),
                **owner.tags(),
                **self.params.tags,
            }
            arn = sm.create_secret(
                Name=name,
                SecretString=value,
                KmsKeyId=key,
                Description=self.params.description,
                Tags=[{"Key": k, "Value": v} for k, v in new_tags.items()],
                ClientRequestToken=token,
            )["ARN"]
            ctx.record_resource(
                "secretsmanager:secret",
                arn,
                change="created",
                region=self._region(ctx),
                details={
                    "name": name,
                    "kms_key": key,
                    "fp": value_fp,
                    "new_version": True,
                    "host": owner.host,
                },
            )
            return
        arn = desc["ARN"]
        tags = {t["Key"]: t.get("Value", "") for t in desc.get("Tags", [])}
        why = conflict(tags, owner, owner_file)
        if why:
            raise StepFailed(
                f"the secret {name!r} {why}; it would have received the credentials of "
                f"{owner.describe()}. Nothing was written to it. Make name_template unique, "
                "then plan again."
            )
        created_here = tags.get(TAG_RUN) == ctx.run_id
        if desc.get("DeletedDate"):
            sm.restore_secret(SecretId=arn)
        key_changed = not self._same_key(ctx, desc.get("KmsKeyId"), key)
        if key_changed:
            sm.update_secret(SecretId=arn, KmsKeyId=key)
        current: str | None
        try:
            # VersionStage spelled out: the same on AWS, and what moto needs once stages moved.
            current = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        except Exception as exc:
            if not not_found(exc):
                raise
            current = None
        same = current is not None and _same_json(current, value)
        # A new key only applies to versions stored after the change: store the value again.
        new_version = not same or key_changed
        details: dict[str, Any] = {
            "name": name,
            "kms_key": key,
            "fp": value_fp,
            "new_version": new_version,
            "host": owner.host,
        }
        stages = desc.get("VersionIdsToStages") or {}
        if new_version and not created_here:
            previous = _version_with(stages, "AWSCURRENT")
            if previous == token:  # our put landed before a crash: it moved from AWSPREVIOUS
                previous = _version_with(stages, "AWSPREVIOUS")
            if previous and previous != token:
                details |= {"previous_version": previous, "version": token}
            # Intent before the put: rollback knows where AWSCURRENT was even after a crash.
            ctx.record_resource(
                "secretsmanager:secret",
                arn,
                change="modified",
                region=self._region(ctx),
                details=details,
            )
        if new_version:
            sm.put_secret_value(SecretId=arn, SecretString=value, ClientRequestToken=token)
        wanted = {TAG_MANAGED: "migrate", **owner.tags(), **self.params.tags}
        missing = [{"Key": k, "Value": v} for k, v in sorted(wanted.items()) if tags.get(k) != v]
        if missing:
            # The managed-by tag always goes with the others: `migrate permissions` lets the
            # migrator tag a secret only in a request that carries it.
            if all(t["Key"] != TAG_MANAGED for t in missing):
                missing.append({"Key": TAG_MANAGED, "Value": "migrate"})
            sm.tag_resource(SecretId=arn, Tags=missing)
        ctx.record_resource(
            "secretsmanager:secret",
            arn,
            change="created" if created_here else "modified",
            region=self._region(ctx),
            details=details,
        )

    def _same_key(self, ctx: StepContext, current: str | None, wanted: str) -> bool:
        if current == wanted:
            return True
        if not current:
            return False
        resolver = KeyResolver(ctx, ctx.is_known)
        region = self._region(ctx)
        return resolver.arn(current, region) == resolver.arn(wanted, region)

    def _rewrite(
        self, ctx: StepContext, fp: Fingerprinter, path: Path, scan: FileScan, details: Any
    ) -> None:
        new = scan.rewritten
        if new is None or fp.data(new) != details["rewritten_fp"]:
            raise StepFailed(
                f"the rewrite of {path} differs from the plan (was the playbook edited?). Plan "
                "again; the file is untouched."
            )
        try:
            live = path.read_bytes()
        except OSError as exc:
            raise StepFailed(f"cannot read {path} ({exc.strerror}); the file is untouched.")
        if live == new:
            return  # done before a crash; nothing to redo
        if fp.data(live) != details["fp"]:
            raise StepFailed(
                f"{path} changed since the plan; nothing was written. Plan again to review it."
            )
        assert ctx.run_id is not None
        ctx.record_resource(
            "config:file",
            str(path),
            change="modified",
            details={
                "backup": str(backup_path(ctx.state_dir, ctx.run_id, path)),
                "fp": details["fp"],
                "rewritten_fp": details["rewritten_fp"],
                "mode": file_mode(path),
                "format": details["format"],
                "style": details["style"],
                "source": details.get("source"),
                "secrets": [s["name"] for s in details["secrets"]],
                "finding_fps": sorted(
                    {fp.value(v) for f in scan.findings for v in credential_values(f.entry.value)}
                ),
            },
        )
        atomic_write(path, new, mode=file_mode(path))

    # -- verify / outputs / rollback ---------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """No moved credential is left in a rewritten file; every secret reads back its value."""
        fp = self._fingerprinter(ctx)
        problems: list[str] = []
        for res in ctx.resources("config:file"):
            path = Path(res.identifier)
            d = res.details or {}
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: cannot be read ({exc.strerror})")
                continue
            scan = self._rescan(path, data, d["format"], d.get("source"))
            # Whole values and the passwords inside URLs: a URL rewritten without its user part
            # but with its password would otherwise pass.
            left = {
                fp.value(v) for f in scan.findings for v in credential_values(f.entry.value)
            } & set(d.get("finding_fps", []))
            if scan.error and not scan.error.startswith("cannot be rewritten"):
                problems.append(f"{path}: {scan.error}")
            if left:
                problems.append(f"{path}: still holds {len(left)} moved credential(s)")
        for res in ctx.resources("secretsmanager:secret"):
            d = res.details or {}
            sm = ctx.client("secretsmanager", res.region)
            value = sm.get_secret_value(SecretId=res.identifier, VersionStage="AWSCURRENT")[
                "SecretString"
            ]
            if fp.value(canonical(json.loads(value))) != d.get("fp"):
                problems.append(f"secret {d.get('name')} does not hold the moved value")
        if problems:
            raise StepFailed(
                "after secrets.from_configs: " + "; ".join(problems) + ". Resume to retry."
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``secret_names``, ``secret_arns``, the rewritten ``files`` and ``secrets_by_host``
        (``{host: [secret name]}``: what each host's application now reads, the shape
        ``iam.keys_to_roles``' ``host_secrets`` takes)."""
        secrets = sorted(
            ((r.details or {}).get("name", ""), r.identifier)
            for r in ctx.resources("secretsmanager:secret")
        )
        by_host: dict[str, set[str]] = {}
        for r in ctx.resources("secretsmanager:secret"):
            d = r.details or {}
            if d.get("host") and d.get("name"):
                by_host.setdefault(str(d["host"]), set()).add(str(d["name"]))
        return {
            "secret_names": [n for n, _ in secrets],
            "secret_arns": [a for _, a in secrets],
            "files": sorted(r.identifier for r in ctx.resources("config:file")),
            "secrets_by_host": {h: sorted(n) for h, n in sorted(by_host.items())},
        }

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """``secrets_by_host`` is known from the files while planning."""
        by_host: dict[str, set[str]] = {}
        for info in facts.get("files", {}).values():
            host = (info.get("source") or {}).get("host")
            for secret in info.get("secrets", []):
                if host:
                    by_host.setdefault(str(host), set()).add(str(secret["name"]))
        return {"secrets_by_host": {h: sorted(n) for h, n in sorted(by_host.items())}}

    def rollback(self, ctx: StepContext) -> None:
        """Restore every rewritten file from its backup (checked by fingerprint); optionally
        schedule the secrets this run created for deletion (``rollback_deletes_secrets``)."""
        fp = self._fingerprinter(ctx)
        refused: list[str] = []
        for res in ctx.resources("config:file"):
            path = Path(res.identifier)
            d = res.details or {}
            backup = Path(d["backup"])
            try:
                data = backup.read_bytes()
            except OSError as exc:
                refused.append(f"{path}: backup {backup} cannot be read ({exc.strerror})")
                continue
            if fp.data(data) != d["fp"]:
                refused.append(f"{path}: backup {backup} does not match its fingerprint")
                continue
            live = path.read_bytes() if path.exists() else None
            if live == data:
                continue
            if live is not None and fp.data(live) != d["rewritten_fp"]:
                refused.append(
                    f"{path} was edited after migrate rewrote it; compare it with {backup} and "
                    "restore by hand"
                )
                continue
            atomic_write(path, data, mode=int(d.get("mode") or 0o600))
            log.info("restored %s from %s", path, backup)
        for res in ctx.resources("secretsmanager:secret"):
            if res.change == "modified":
                refused += self._restore_current(ctx, res.identifier, res.region, res.details)
        if self.params.rollback_deletes_secrets:
            for res in ctx.resources("secretsmanager:secret"):
                if res.change != "created":
                    continue
                sm = ctx.client("secretsmanager", res.region)
                try:
                    sm.delete_secret(
                        SecretId=res.identifier,
                        RecoveryWindowInDays=self.params.recovery_window_days,
                    )
                except Exception as exc:
                    if not (not_found(exc) or has_code(exc, "InvalidRequestException")):
                        raise
        if refused:
            raise StepFailed("rollback left some files as they are: " + "; ".join(refused) + ".")

    def _restore_current(
        self, ctx: StepContext, arn: str, region: str | None, details: dict[str, Any] | None
    ) -> list[str]:
        """Move AWSCURRENT back to the version this run moved it from (if it still sits on ours).

        The files go back to the credentials they held; the secret's readers (the app, cut over
        by an earlier run) must see those same credentials again, not the ones this run stored.
        """
        d = details or {}
        previous, ours = d.get("previous_version"), d.get("version")
        if not previous or not ours:
            return []
        sm = ctx.client("secretsmanager", region)
        try:
            stages = sm.describe_secret(SecretId=arn).get("VersionIdsToStages") or {}
        except Exception as exc:
            if not_found(exc):
                return [f"secret {d.get('name')}: gone; AWSCURRENT not restored"]
            raise
        current = _version_with(stages, "AWSCURRENT")
        if current == previous:
            return []  # restored before (a repeated rollback)
        if current != ours:
            return [
                f"secret {d.get('name')}: AWSCURRENT moved to another version after this run; "
                f"left as it is (this run moved it from version {previous})"
            ]
        sm.update_secret_version_stage(
            SecretId=arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=previous,
            RemoveFromVersionId=ours,
        )
        log.info("moved AWSCURRENT of %s back to version %s", d.get("name"), previous)
        return []


def _loader_lines(style: str, names: list[str]) -> tuple[str, ...]:
    """For an .env file whose variables are removed: the command the service's start-up runs
    to put them back into its environment, from the secret (the same line the file's comment
    shows), so the plan says what to change in the unit file or entrypoint."""
    if style != "remove":
        return ()
    return tuple(
        f'start-up must load {name}: eval "$({envfile.loader_hint(name)})" (needs the AWS CLI '
        "and jq on the host)"
        for name in names
    )


def _file_risks(path: str) -> tuple[str, ...]:
    """What a rewrite of this particular kind of file needs on top of its style."""
    name = Path(path).name
    if name == "tomcat-users.xml":
        return (
            "tomcat-users.xml: Tomcat replaces ${NAME} from system properties (or "
            "org.apache.tomcat.util.digester.EnvironmentPropertySource) when it reads the file; "
            'set readonly="true" on the UserDatabase resource in server.xml, or a user change '
            "through the manager or JMX writes the resolved passwords back into the file",
        )
    if name == "settings.xml":
        return (
            "Maven settings.xml: ${env.NAME} is read from the environment of the mvn process "
            "(CI job, build agent); export each variable from the secret before the build",
        )
    return ()


def _same_json(current: str, wanted: str) -> bool:
    try:
        return bool(json.loads(current) == json.loads(wanted))
    except ValueError:
        return current == wanted


def _version_with(stages: dict[str, list[str]], stage: str) -> str | None:
    """The version id that carries ``stage`` (``VersionIdsToStages`` of DescribeSecret)."""
    return next((v for v, labels in sorted(stages.items()) if stage in labels), None)
