"""secrets.from_configs against the moto server: secrets, rewrites, gates, rollback, crashes, leaks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.reports.render import render_run_report
from migrate.sandbox.server import SandboxServer
from migrate.store.models import ActionRow
from tests.conftest import PLAYBOOKS, run_cli, write_playbook
from tests.unit.configs_corpus import (
    API_TOKEN,
    COMPLIANT,
    CORPUS,
    DB_HOST,
    ERRORS,
    IMPORT_LIST_PW,
    JWT_VALUE,
    MAVEN_CDATA_PW,
    MAVEN_PW,
    MOVED,
    REDIS_PW,
    REPORTS_PW,
    SECRET_VALUES,
    SQLSERVER_PW,
    TOMCAT_ADMIN_PW,
    TOMCAT_PW,
)

STEP = "config-secrets"


def _write_corpus(root: Path) -> dict[str, bytes]:
    for rel, data in CORPUS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "etc/my.cnf").chmod(0o640)
    return dict(CORPUS)


def _playbook(
    tmp_path: Path,
    configs: Path,
    extra: str = "",
    yes_all: bool = False,
    template: str = "legacy/prod/<file>/<resource>",
) -> Path:
    return write_playbook(
        tmp_path / "config-secrets.yaml",
        f"""\
name: config secrets test
steps:
  - id: kms
    uses: kms.ensure_key
  - id: {STEP}
    uses: secrets.from_configs
{"    yes_approves: all" if yes_all else ""}
    with:
      paths: ["{configs}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      name_template: "{template}"
      # Every shape of the corpus rewritten (the defaults refuse files nothing would expand a
      # reference in: see test_files_no_framework_reads_are_refused_by_default).
      rewrite: {{properties: spring-import, yaml: spring-import, json: placeholder, ini: placeholder}}
{extra}""",
    )


def _key_arn(aws: Any) -> str:
    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])


def _secrets(aws: Any) -> dict[str, dict[str, Any]]:
    sm = aws("secretsmanager")
    out: dict[str, dict[str, Any]] = {}
    for page in sm.get_paginator("list_secrets").paginate():
        for s in page["SecretList"]:
            out[s["Name"]] = s
    return out


def _run_and_approve(settings: Settings, book: Path) -> str:
    first = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert first.status == "awaiting-approval", first
    commands.approve(settings, first.run_id, STEP)
    done = commands.resume(settings, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert done.status == "done", commands.status(settings, first.run_id)
    return first.run_id


def test_secrets_stored_with_key_then_gated_rewrite(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    original = _write_corpus(configs)
    book = _playbook(tmp_path, configs)

    first = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    # --yes stores the secrets but never approves the destructive cut-over of the files.
    assert first.status == "awaiting-approval", json.dumps(
        commands.status(settings, first.run_id), default=str
    )[:3000]
    for rel, data in original.items():
        assert (configs / rel).read_bytes() == data, rel
    key_arn = _key_arn(aws)
    secrets = _secrets(aws)
    sm = aws("secretsmanager")
    tomcat = sm.describe_secret(SecretId="legacy/prod/context.xml/jdbc-legacy")
    assert tomcat["KmsKeyId"] == key_arn
    tags = {t["Key"]: t["Value"] for t in tomcat["Tags"]}
    assert tags["migrate:managed-by"] == "migrate" and tags["migrate:run"] == first.run_id
    value = json.loads(
        sm.get_secret_value(SecretId="legacy/prod/context.xml/jdbc-legacy")["SecretString"]
    )
    assert value == {
        "engine": "mysql",
        "host": DB_HOST,
        "port": 3306,
        "dbname": "app",
        "username": "app",
        "password": TOMCAT_PW,
    }
    env = json.loads(sm.get_secret_value(SecretId="legacy/prod/env/env")["SecretString"])
    assert env["API_TOKEN"] == API_TOKEN and REPORTS_PW in env["DATABASE_URL"]
    assert all(s.get("KmsKeyId") == key_arn for s in secrets.values())

    commands.approve(settings, first.run_id, STEP)
    done = commands.resume(settings, first.run_id, options=RunOptions(quiet=True))
    assert done.status == "done"
    context = (configs / "tomcat/conf/context.xml").read_text()
    assert 'username="legacy/prod/context.xml/jdbc-legacy"' in context
    assert 'url="jdbc-secretsmanager:mysql://' in context
    assert (
        "AWSSecretsManagerMySQLDriver" in context
        and "password=" not in context.split("-->", 2)[1].split("<!--")[0]
    )
    props = (configs / "app/application.properties").read_text()
    assert "spring.config.import=aws-secretsmanager:" in props and TOMCAT_PW not in props
    for rel in ERRORS | COMPLIANT:
        assert (configs / rel).read_bytes() == original[rel], rel
    # Permissions are kept; backups are private.
    assert (configs / "etc/my.cnf").stat().st_mode & 0o777 == 0o640
    backups = list((settings_dir(settings) / "backups" / first.run_id).iterdir())
    assert len(backups) == len(MOVED)
    assert all(b.stat().st_mode & 0o777 == 0o600 for b in backups)
    assert {b.read_bytes() for b in backups} == {original[rel] for rel in MOVED}

    # The next plan finds nothing left to move.
    _, plan = commands.plan(settings, str(book))
    assert [a for s in plan.steps for a in s.actions] == []


def settings_dir(settings: Settings) -> Path:
    return Path(settings.state or "").parent


def test_rollback_restores_every_file_byte_for_byte(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    original = _write_corpus(configs)
    book = _playbook(tmp_path, configs, "      rollback_deletes_secrets: true\n")
    run_id = _run_and_approve(settings, book)
    assert (configs / "app/.env").read_bytes() != original["app/.env"]

    lines = commands.rollback(settings, run_id, STEP)
    assert lines == [f"{STEP}: rolled back"]
    for rel, data in original.items():
        assert (configs / rel).read_bytes() == data, rel
    assert (configs / "etc/my.cnf").stat().st_mode & 0o777 == 0o640
    # The secrets this run created are scheduled for deletion (recovery window), not kept.
    sm = aws("secretsmanager")
    desc = sm.describe_secret(SecretId="legacy/prod/context.xml/jdbc-legacy")
    assert desc.get("DeletedDate")


def test_rollback_refuses_to_clobber_a_file_edited_after_the_rewrite(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    _write_corpus(configs)
    run_id = _run_and_approve(settings, _playbook(tmp_path, configs))
    edited = configs / "app/application.yml"
    edited.write_bytes(edited.read_bytes() + b"# edited by an operator\n")
    with pytest.raises(Exception, match="edited after migrate rewrote it"):
        commands.rollback(settings, run_id, STEP)
    assert edited.read_bytes().endswith(b"# edited by an operator\n")
    # The other files were restored all the same.
    assert (configs / "app/.env").read_bytes() == CORPUS["app/.env"]


def _set_status(settings: Settings, run_id: str, kind: str, status: str) -> None:
    store = settings.store()
    with store.write() as session:
        session.execute(update(ActionRow).where(ActionRow.kind == kind).values(status=status))


def test_resume_after_crash_between_secret_creation_and_rewrite(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    original = _write_corpus(configs)
    book = _playbook(tmp_path, configs)
    first = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    sm = aws("secretsmanager")
    names = sorted(_secrets(aws))
    versions = {n: len(sm.list_secret_version_ids(SecretId=n)["Versions"]) for n in names}
    # A SIGKILL after the secrets were created but before `done` was committed leaves the
    # store actions `started`; the files are still the originals.
    _set_status(settings, first.run_id, "secrets.store", "started")
    commands.approve(settings, first.run_id, STEP)
    done = commands.resume(settings, first.run_id, options=RunOptions(quiet=True))
    assert done.status == "done"
    assert sorted(_secrets(aws)) == names
    assert {n: len(sm.list_secret_version_ids(SecretId=n)["Versions"]) for n in names} == versions
    rewritten = {rel: (configs / rel).read_bytes() for rel in MOVED}
    assert all(rewritten[rel] != original[rel] for rel in MOVED)

    # A crash after the rename but before `done`: the rewrite runs again and changes nothing.
    _set_status(settings, first.run_id, "config.rewrite", "started")
    with settings.store().write() as session:
        from migrate.store.models import Run, StepRun

        session.execute(update(StepRun).values(status="running"))
        session.execute(update(Run).values(status="failed"))
    again = commands.resume(settings, first.run_id, options=RunOptions(quiet=True))
    assert again.status == "done"
    assert {rel: (configs / rel).read_bytes() for rel in MOVED} == rewritten
    lines = commands.rollback(settings, first.run_id, STEP)
    assert lines == [f"{STEP}: rolled back"]
    assert {rel: (configs / rel).read_bytes() for rel in CORPUS} == original


def test_existing_secret_with_the_same_value_gets_no_new_version(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    (configs / "app").mkdir(parents=True)
    (configs / "app/crlf.properties").write_bytes(CORPUS["app/crlf.properties"])
    book = _playbook(tmp_path, configs)
    first = _run_and_approve(settings, book)
    name = "legacy/prod/crlf.properties/db"
    sm = aws("secretsmanager")
    # Rolled back (the file is back, the secret stays), then migrated again by the same owner.
    commands.rollback(settings, first, STEP)
    _, plan = commands.plan(settings, str(book))
    store = next(a for s in plan.steps for a in s.actions if a.kind == "secrets.store")
    assert "update if changed" in store.summary
    _run_and_approve(settings, book)
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1
    assert (
        b"spring.config.import=aws-secretsmanager:legacy/prod/crlf.properties/db\r\n"
        in (configs / "app/crlf.properties").read_bytes()
    )


def test_file_changed_after_the_plan_makes_it_stale(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    _write_corpus(configs)
    book = _playbook(tmp_path, configs)
    plan_id, _ = commands.plan(settings, str(book))
    (configs / "app/.env").write_bytes(CORPUS["app/.env"].replace(b"API_TOKEN=", b"API_TOKEN=x"))
    with pytest.raises(Exception, match="stale"):
        commands.run(settings, plan_id=plan_id, options=RunOptions(quiet=True))


def test_plan_reads_only_and_shows_locations_and_fingerprints(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    original = _write_corpus(configs)
    book = _playbook(tmp_path, configs)
    commands.run(settings, str(PLAYBOOKS / "kms-key.yaml"), options=RunOptions(quiet=True))
    mtimes = {rel: (configs / rel).stat().st_mtime_ns for rel in CORPUS}
    moto_server.start_recording()
    try:
        _, plan = commands.plan(settings, str(book))
    finally:
        moto_server.stop_recording()
    ops = {r["operation"] for r in moto_server.recorded_requests()}
    assert ops and all(op.startswith(("Describe", "List", "Get")) for op in ops), ops
    assert "GetSecretValue" not in ops
    assert {rel: (configs / rel).stat().st_mtime_ns for rel in CORPUS} == mtimes
    assert {rel: (configs / rel).read_bytes() for rel in CORPUS} == original

    step = next(s for s in plan.steps if s.id == STEP)
    facts = step.facts
    ctx_file = facts["files"][str(configs / "tomcat/conf/context.xml")]
    assert ctx_file["findings"][0]["line"] == 5
    assert ctx_file["findings"][0]["fp"].startswith("hmac:")
    assert ctx_file["secrets"][0]["name"] == "legacy/prod/context.xml/jdbc-legacy"
    assert sorted(facts["compliant"]) == sorted(str(configs / r) for r in COMPLIANT)
    errors = {p for p, f in facts["files"].items() if f["error"]}
    assert errors == {str(configs / r) for r in ERRORS}
    assert any("inside an XML comment" in w for w in facts["warnings"])
    rewrites = [a for a in step.actions if a.kind == "config.rewrite"]
    assert len(rewrites) == len(MOVED)
    assert all(a.gate == "config-cutover" and a.destructive for a in rewrites)
    body = json.dumps(plan.body())
    for value in SECRET_VALUES:
        assert value not in body and json.dumps(value)[1:-1] not in body, value


def _leaks(blob: bytes) -> list[str]:
    found = []
    for value in SECRET_VALUES:
        for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
            if form.encode("utf-8") in blob:
                found.append(value)
    return found


def _cli(tmp_path: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, state=tmp_path / "state" / "migrate.db", endpoint=endpoint)


def test_no_secret_value_reaches_db_log_journal_plan_or_reports(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    _write_corpus(configs)
    book = str(_playbook(tmp_path, configs))
    outputs: list[str] = []
    plan = _cli(tmp_path, endpoint, "plan", book, "--json", "--report", str(tmp_path / "p.md"))
    outputs += [plan.stdout, plan.stderr]
    run = _cli(tmp_path, endpoint, "run", book, "--yes")
    assert run.returncode == 3, run.stderr
    run_id = next(
        r[0]
        for r in sqlite3.connect(tmp_path / "state" / "migrate.db").execute("select id from runs")
    )
    outputs += [run.stdout, run.stderr]
    settings = Settings(state=str(tmp_path / "state" / "migrate.db"), endpoint_url=endpoint)
    commands.approve(settings, run_id, STEP)
    for args in (("resume", run_id), ("report", run_id, "--format", "json")):
        proc = _cli(tmp_path, endpoint, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        outputs += [proc.stdout, proc.stderr]
    journal = json.loads(outputs[-2])["journal"]
    assert any(j["operation"] == "CreateSecret" for j in journal)
    outputs.append(render_run_report(commands.report(settings, run_id), "md"))
    outputs.append(json.dumps(commands.status(settings, run_id), default=str))
    outputs += commands.rollback(settings, run_id)
    for index, out in enumerate(outputs):
        assert _leaks(out.encode()) == [], (index, out[:300])
    state = tmp_path / "state"
    checked = 0
    for path in state.rglob("*"):
        if path.is_file() and "backups" not in path.parts:
            assert _leaks(path.read_bytes()) == [], path
            checked += 1
    assert (state / "migrate.log").exists() and checked >= 3
    assert _leaks((tmp_path / "p.md").read_bytes()) == []
    # The backups hold the originals (that is their job) and only the owner can read them.
    backups = [p for p in (state / "backups").rglob("*") if p.is_file()]
    assert backups and all(p.stat().st_mode & 0o077 == 0 for p in backups)


def test_sigkill_during_the_step_never_half_writes_and_resume_finishes(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    count = 24
    originals = {}
    for i in range(count):
        path = configs / f"svc{i:02d}" / "application.properties"
        path.parent.mkdir(parents=True)
        data = f"# service {i}\nserver.port={8000 + i}\ndb.password=Kill-Pass-{i:02d}\n".encode()
        path.write_bytes(data)
        originals[path] = data
    book = _playbook(tmp_path, configs, yes_all=True, template="legacy/prod/<dir>/<resource>")
    state = tmp_path / "state" / "migrate.db"
    env = dict(os.environ, MIGRATE_STATE=str(state), AWS_ENDPOINT_URL=endpoint)
    exe = Path(sys.executable).parent / "migrate"
    proc = subprocess.Popen(
        [str(exe), "-q", "run", str(book), "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    rewritten = 0
    while time.monotonic() < deadline and proc.poll() is None:
        rewritten = sum(1 for p, d in originals.items() if p.read_bytes() != d)
        if rewritten >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= rewritten < count, "the run was not killed in the middle of the step"
    for path, data in originals.items():
        now = path.read_bytes()
        assert now == data or b"spring.config.import=aws-secretsmanager:" in now, path
        assert b"Kill-Pass" not in now or now == data
    run_id = sqlite3.connect(state).execute("select id from runs").fetchone()[0]
    resumed = run_cli("-q", "resume", run_id, "--yes", state=state, endpoint=endpoint)
    status = run_cli("status", run_id, "--json", state=state, endpoint=endpoint).stdout
    assert resumed.returncode == 0, [
        (a["target"], a["kind"], a["error"])
        for st in json.loads(status)["steps"]
        for a in st["actions"]
        if a["error"]
    ] or [(st["id"], st["status"], st.get("error")) for st in json.loads(status)["steps"]]
    for path in originals:
        assert b"Kill-Pass" not in path.read_bytes()
    names = _secrets(aws)
    assert len([n for n in names if n.startswith("legacy/prod/svc")]) == count
    assert not list(configs.rglob("*.migrate-tmp"))


def test_debug_output_has_no_secret_value(endpoint: str, aws: Any, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    (configs / "app").mkdir(parents=True)
    (configs / "app/.env").write_bytes(CORPUS["app/.env"])
    run = _cli(tmp_path, endpoint, "--debug", "run", str(_playbook(tmp_path, configs)), "--yes")
    assert run.returncode == 3
    assert _leaks((run.stdout + run.stderr).encode()) == []


def test_xml_text_tomcat_users_import_merge_and_detect_secrets_shapes_end_to_end(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    chosen = [
        "tomcat/conf/tomcat-users.xml",
        "maven/settings.xml",
        "app/imports.properties",
        "app/imports-list.yml",
        "app/datasources.properties",
    ]
    for rel in chosen:
        (configs / rel).parent.mkdir(parents=True, exist_ok=True)
        (configs / rel).write_bytes(CORPUS[rel])
    book = _playbook(tmp_path, configs)
    commands.run(settings, str(PLAYBOOKS / "kms-key.yaml"), options=RunOptions(quiet=True))
    _, plan = commands.plan(settings, str(book))
    step = next(s for s in plan.steps if s.id == STEP)
    assert step.facts["value_detectors"].startswith("detect-secrets ")
    rewrites = {a.target: a for a in step.actions if a.kind == "config.rewrite"}
    users_risks = rewrites[str(configs / "tomcat/conf/tomcat-users.xml")].risks
    assert any('readonly="true"' in r for r in users_risks)
    assert any("${env.NAME}" in r for r in rewrites[str(configs / "maven/settings.xml")].risks)
    seed = step.facts["files"][str(configs / "app/datasources.properties")]["findings"]
    assert {f["key"]: f["reason"] for f in seed}["reports.session.seed"] == (
        "value shape: JSON Web Token (detect-secrets)"
    )

    run_id = _run_and_approve(settings, book)
    sm = aws("secretsmanager")

    def value(name: str) -> dict[str, Any]:
        return dict(json.loads(sm.get_secret_value(SecretId=name)["SecretString"]))

    assert value("legacy/prod/tomcat-users.xml/admin") == {"password": TOMCAT_ADMIN_PW}
    assert value("legacy/prod/settings.xml/nexus-releases") == {"password": MAVEN_PW}
    assert value("legacy/prod/settings.xml/nexus-snapshots") == {"password": MAVEN_CDATA_PW}
    assert value("legacy/prod/imports.properties/redis") == {"redis.password": REDIS_PW}
    assert value("legacy/prod/imports-list.yml/spring-datasource") == {
        "spring.datasource.password": IMPORT_LIST_PW
    }
    assert SQLSERVER_PW in value("legacy/prod/datasources.properties/ledger")["ledger.url"]
    assert value("legacy/prod/datasources.properties/reports-session") == {
        "reports.session.seed": JWT_VALUE
    }

    users = (configs / "tomcat/conf/tomcat-users.xml").read_text()
    assert 'password="${ADMIN_PASSWORD}"' in users and TOMCAT_ADMIN_PW not in users
    maven = (configs / "maven/settings.xml").read_bytes()
    assert b"<password>${env.NEXUS_RELEASES_PASSWORD}</password>\r\n" in maven
    props = (configs / "app/imports.properties").read_text()
    assert props.startswith(
        "spring.config.import=optional:file:./extra.properties,"
        "aws-secretsmanager:legacy/prod/imports.properties/redis\n"
    )
    spring = yaml.safe_load((configs / "app/imports-list.yml").read_text())
    assert spring["spring"]["config"]["import"][-1] == (
        "aws-secretsmanager:legacy/prod/imports-list.yml/spring-datasource"
    )

    assert commands.rollback(settings, run_id, STEP) == [f"{STEP}: rolled back"]
    for rel in chosen:
        assert (configs / rel).read_bytes() == CORPUS[rel], rel


def test_files_no_framework_reads_are_refused_by_default(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A plain db.properties that no Spring Boot reads, an INI and a JSON file: a reference
    written into them would be expanded by nothing, and the application would lose its
    password. By default they are refused with the reason and left as they are (not compliant);
    a Spring Boot application.properties is rewritten with spring.config.import."""
    configs = tmp_path / "configs"
    files = {
        "app/db.properties": b"db.url=jdbc:mysql://db.internal:3306/app\n"
        b"db.user=app\ndb.password=Plain-Props-Pw-81\n",
        "etc/app.ini": b"[database]\nhost = db.internal\nuser = app\npassword = Ini-Pw-Seven-77\n",
        "conf/settings.json": b'{"db": {"user": "app", "password": "Json-Pw-Nine-99"}}\n',
        "app/application.properties": b"spring.datasource.url=jdbc:mysql://db.internal/app\n"
        b"spring.datasource.username=app\nspring.datasource.password=Spring-Pw-Four-44\n",
        "app/.env": b"DB_USER=app\nDB_PASSWORD=Env-Pw-Three-33\n",
        # spring.* keys, but read through @PropertySource: spring.config.import is ignored there.
        "app/jdbc.properties": b"spring.datasource.password=Source-Pw-Two-22\n",
    }
    for rel, data in files.items():
        (configs / rel).parent.mkdir(parents=True, exist_ok=True)
        (configs / rel).write_bytes(data)
    book = write_playbook(
        tmp_path / "book.yaml",
        f"""\
name: defaults
steps:
  - id: kms
    uses: kms.ensure_key
  - id: {STEP}
    uses: secrets.from_configs
    with:
      paths: ["{configs}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
""",
    )
    _, plan = commands.plan(settings, str(book))
    step = plan.steps[1]
    rewritten = {Path(a.target).name for a in step.actions if a.kind == "config.rewrite"}
    assert rewritten == {"application.properties", ".env"}, rewritten
    # The .env's variables are removed: the plan says what the start-up must run instead.
    (env,) = [a for a in step.actions if a.kind == "config.rewrite" and a.target.endswith(".env")]
    assert any('eval "$(aws secretsmanager get-secret-value --secret-id' in r for r in env.risks)
    warnings = " ".join(step.facts["warnings"])
    assert "db.properties" in warnings and "nothing shows that Spring Boot loads" in warnings
    assert "jdbc.properties" in warnings
    assert "app.ini" in warnings and "rewrite.ini: placeholder" in warnings
    assert "settings.json" in warnings and "rewrite.json: placeholder" in warnings
    facts = step.facts["files"]
    refused = [f for f in facts if not f.endswith(("application.properties", ".env"))]
    assert refused and all(not facts[f]["compliant"] for f in refused), facts
    run_id = _run_and_approve(settings, book)
    for rel in ("app/db.properties", "app/jdbc.properties", "etc/app.ini", "conf/settings.json"):
        assert (configs / rel).read_bytes() == files[rel]  # left exactly as they were
    assert b"spring.config.import" in (configs / "app/application.properties").read_bytes()
    assert commands.status(settings, run_id)["status"] == "done"
