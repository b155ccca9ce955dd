"""secrets.from_configs: one owner per secret (host, root, path, resource); AWSCURRENT rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import MigrateError
from tests.conftest import PLAYBOOKS, run_cli, write_playbook

STEP = "config-secrets"
HOST_A_PW = "Host-A-Tomcat-Pass-1"
HOST_B_PW = "Host-B-Tomcat-Pass-2"
NEW_PW = "Host-A-Rotated-Pass-3"


def _context_xml(password: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Context>\n'
        '  <Resource name="jdbc/app" auth="Container" type="javax.sql.DataSource" '
        'driverClassName="com.mysql.cj.jdbc.Driver" url="jdbc:mysql://db.internal:3306/app" '
        f'username="app" password="{password}"/>\n</Context>\n'
    ).encode()


def _tomcat(root: Path, password: str) -> Path:
    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "context.xml").write_bytes(_context_xml(password))
    return root


def _book(tmp_path: Path, paths: list[Path], extra: str = "", name: str = "b.yaml") -> Path:
    listed = ", ".join(f'"{p}"' for p in paths)
    return write_playbook(
        tmp_path / name,
        f"""\
name: ownership test
steps:
  - id: kms
    uses: kms.ensure_key
  - id: {STEP}
    uses: secrets.from_configs
    yes_approves: all
    with:
      paths: [{listed}]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
{extra}""",
    )


def _run(settings: Settings, book: Path) -> str:
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "done", commands.status(settings, result.run_id)
    return result.run_id


def _value(aws: Any, name: str) -> dict[str, Any]:
    # VersionStage spelled out: moto needs it once update_secret_version_stage moved a stage.
    sm = aws("secretsmanager")
    return dict(
        json.loads(sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
    )


def _tags(aws: Any, name: str) -> dict[str, str]:
    desc = aws("secretsmanager").describe_secret(SecretId=name)
    return {t["Key"]: t["Value"] for t in desc.get("Tags", [])}


def test_default_names_tell_two_hosts_tomcats_apart_and_carry_their_owner(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    host_a = _tomcat(tmp_path / "copies/host-a", HOST_A_PW)
    host_b = _tomcat(tmp_path / "copies/host-b", HOST_B_PW)
    book = _book(
        tmp_path,
        [host_a, host_b],
        f'      hosts: {{"{host_a}": web-a, "{host_b}": web-b}}\n',
    )
    _run(settings, book)
    # Both conf/context.xml in one run, default name_template: one secret each, no clash.
    assert _value(aws, "web-a/conf/context.xml/jdbc-app")["password"] == HOST_A_PW
    assert _value(aws, "web-b/conf/context.xml/jdbc-app")["password"] == HOST_B_PW
    tags = _tags(aws, "web-b/conf/context.xml/jdbc-app")
    assert tags["migrate:source-host"] == "web-b"
    assert tags["migrate:source-path"] == "conf/context.xml"
    assert tags["migrate:source-resource"] == "jdbc-app"
    assert "migrate:source-root" not in tags  # a named host: the copy's location is irrelevant
    assert (
        b'username="web-b/conf/context.xml/jdbc-app"' in (host_b / "conf/context.xml").read_bytes()
    )


def test_a_secret_owned_by_another_host_is_a_plan_error_naming_both(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    # Host A is cut over; its app now reads legacy/conf/context.xml/jdbc-app.
    host_a = _tomcat(tmp_path / "a", HOST_A_PW)
    template = '      name_template: "legacy/<path>/<resource>"\n'
    _run(settings, _book(tmp_path, [host_a], template + "      host: web-a\n", "a.yaml"))
    # Host B's identical layout produces the same name: before, B's run stored a new version
    # and A's app read B's password from then on.
    host_b = _tomcat(tmp_path / "b", HOST_B_PW)
    book_b = _book(tmp_path, [host_b], template + "      host: web-b\n", "b.yaml")
    with pytest.raises(MigrateError) as err:
        commands.plan(settings, str(book_b))
    message = str(err.value)
    assert "legacy/conf/context.xml/jdbc-app" in message
    assert "web-a:conf/context.xml (resource jdbc-app)" in message
    assert "web-b:conf/context.xml (resource jdbc-app)" in message
    assert HOST_B_PW not in message
    sm = aws("secretsmanager")
    versions = sm.list_secret_version_ids(SecretId="legacy/conf/context.xml/jdbc-app")["Versions"]
    assert (
        len(versions) == 1
        and _value(aws, "legacy/conf/context.xml/jdbc-app")["password"] == HOST_A_PW
    )
    assert (host_b / "conf/context.xml").read_bytes() == _context_xml(HOST_B_PW)


def test_two_roots_on_one_machine_without_host_are_different_owners(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    template = '      name_template: "legacy/<path>/<resource>"\n'
    _run(settings, _book(tmp_path, [_tomcat(tmp_path / "t1", HOST_A_PW)], template, "a.yaml"))
    book = _book(tmp_path, [_tomcat(tmp_path / "t2", HOST_B_PW)], template, "b.yaml")
    with pytest.raises(MigrateError, match=r"belongs to .*/t1/conf/context.xml"):
        commands.plan(settings, str(book))


def test_a_same_named_secret_migrate_did_not_create_is_a_plan_error(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    host_a = _tomcat(tmp_path / "a", HOST_A_PW)
    commands.run(settings, str(PLAYBOOKS / "kms-key.yaml"), options=RunOptions(quiet=True))
    sm = aws("secretsmanager")
    sm.create_secret(Name="web-a/conf/context.xml/jdbc-app", SecretString='{"password": "other"}')
    book = _book(tmp_path, [host_a], "      host: web-a\n")
    with pytest.raises(MigrateError, match="was not created by migrate") as err:
        commands.plan(settings, str(book))
    assert "web-a/conf/context.xml/jdbc-app" in str(err.value)
    assert "web-a:conf/context.xml (resource jdbc-app)" in str(err.value)
    assert _value(aws, "web-a/conf/context.xml/jdbc-app") == {"password": "other"}


def test_rollback_moves_awscurrent_back_to_the_version_the_run_replaced(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    host_a = _tomcat(tmp_path / "a", HOST_A_PW)
    name = "web-a/conf/context.xml/jdbc-app"
    first = _run(settings, _book(tmp_path, [host_a], "      host: web-a\n", "1.yaml"))
    commands.rollback(settings, first, STEP)  # the file is back; the secret stays (no delete)
    assert (host_a / "conf/context.xml").read_bytes() == _context_xml(HOST_A_PW)
    # The password changes on the box, and the same owner migrates again: a new version.
    (host_a / "conf/context.xml").write_bytes(_context_xml(NEW_PW))
    second = _run(settings, _book(tmp_path, [host_a], "      host: web-a\n", "2.yaml"))
    assert _value(aws, name)["password"] == NEW_PW
    commands.rollback(settings, second, STEP)
    # The file holds its own password again, and so does the secret's AWSCURRENT.
    assert (host_a / "conf/context.xml").read_bytes() == _context_xml(NEW_PW)
    assert _value(aws, name)["password"] == HOST_A_PW


def test_secrets_check_resolves_every_reference_of_rewritten_files(
    settings: Settings, aws: Any, tmp_path: Path, endpoint: str
) -> None:
    host_a = _tomcat(tmp_path / "a", HOST_A_PW)
    _run(settings, _book(tmp_path, [host_a], "      host: web-a\n"))
    app = tmp_path / "a/app"
    app.mkdir()
    # A reference to a secret that does not exist (a typo, another account, a region).
    (app / "application.properties").write_text(
        "server.port=8080\nspring.config.import=optional:aws-secretsmanager:web-a/app/missing\n"
    )
    (app / ".env").write_text("SMTP_PASSWORD=${SMTP_PASSWORD}\n")
    result = commands.secrets_check(settings, [str(tmp_path / "a")])
    by_target = {r["target"]: r for r in result["references"]}
    assert by_target["web-a/conf/context.xml/jdbc-app"]["ok"] is True
    assert by_target["web-a/conf/context.xml/jdbc-app"]["via"] == "JDBC wrapper username"
    assert by_target["web-a/app/missing"]["ok"] is False
    assert by_target["web-a/app/missing"]["problem"] == "no such secret"
    assert by_target["SMTP_PASSWORD"]["kind"] == "variable"
    assert result["failures"] == 1
    proc = run_cli("secrets", "check", str(tmp_path / "a"), endpoint=endpoint)
    assert proc.returncode == 1, proc.stderr
    assert "web-a/app/missing (spring.config.import): FAILS: no such secret" in proc.stdout
    assert HOST_A_PW not in proc.stdout + proc.stderr
    bad = run_cli("secrets", "check", str(tmp_path / "nothing-here"), endpoint=endpoint)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_secrets_check_reads_the_tomcat_lib_for_what_the_wrapper_loads(
    settings: Settings, aws: Any, tmp_path: Path, endpoint: str
) -> None:
    """After the rewrite, the Tomcat loads the JDBC wrapper from its lib at the next restart:
    a lib without the wrapper's jar would only fail then. secrets check says so now (exit 1),
    and passes once the jars are in; --classpath names a Spring Boot application's jar."""
    from tests.unit.test_configs_classpath import _jar, _tomcat_lib

    base = _tomcat(tmp_path / "tomcat", HOST_A_PW)
    _run(settings, _book(tmp_path, [base], "      host: web-a\n"))
    _tomcat_lib(base / "lib", wrapper=False)
    proc = run_cli("secrets", "check", str(base / "conf"), endpoint=endpoint)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "classpath for" in ln]
    assert line.startswith(f"{base / 'conf' / 'context.xml'}:")
    assert f"({base / 'lib'}): FAILS: no jar has " in line and "aws-secretsmanager-jdbc" in line
    _tomcat_lib(base / "lib")
    proc = run_cli("secrets", "check", str(base / "conf"), endpoint=endpoint)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok (aws-secretsmanager-jdbc 2.0.2; SDK v2 with ApacheHttpClient" in proc.stdout

    app = tmp_path / "app"
    app.mkdir()
    (app / "application.properties").write_text(
        "spring.config.import=aws-secretsmanager:web-a/conf/context.xml/jdbc-app\n"
    )
    proc = run_cli("secrets", "check", str(app), endpoint=endpoint)
    assert proc.returncode == 0 and "not checked: pass --classpath" in proc.stdout
    jar = _jar(tmp_path / "shop.jar", ["com.acme.App"])  # built without Spring Cloud AWS
    proc = run_cli("secrets", "check", str(app), "--classpath", str(jar), endpoint=endpoint)
    assert proc.returncode == 1 and "spring-cloud-aws-starter-secrets-manager" in proc.stdout
    bad = run_cli(
        "secrets", "check", str(app), "--classpath", str(tmp_path / "no"), endpoint=endpoint
    )
    assert bad.returncode == 2 and "no such file or directory" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("book", ["config-secrets.yaml", "ftr-baseline.yaml"])
def test_the_shipped_playbooks_give_two_hosts_tomcats_their_own_secrets(
    book: str, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """The shipped playbooks' names carry <host>/<path>: host B's run never takes over the
    secret host A's application reads (it used to get a plan error, or worse, a new version)."""
    host_param = "host" if book == "config-secrets.yaml" else "config_host"
    names = {}
    for host, password in (("web-1", HOST_A_PW), ("web-2", HOST_B_PW)):
        root = _tomcat(tmp_path / host, password)
        params = [f"config_paths={root}", f"{host_param}={host}"]
        _, plan = commands.plan(settings, str(PLAYBOOKS / book), params)
        step = next(s for s in plan.steps if s.uses == "secrets.from_configs")
        (store,) = [a for a in step.actions if a.kind == "secrets.store"]
        (names[host],) = [s["name"] for s in store.details["secrets"]]
        # Only the secrets step: the rest of the baseline is not what this test is about.
        args = [*params, "watch_window=0s"] if book == "ftr-baseline.yaml" else params
        plan_id, _ = commands.plan(settings, str(PLAYBOOKS / book), args)
        options = RunOptions(quiet=True, yes=True, only=[step.id, "kms"])
        result = commands.run(settings, None, plan_id=plan_id, options=options)
        # The secrets are stored; each file rewrite waits at its gate (exit 3).
        assert result.exit_code in (0, 3), commands.status(settings, result.run_id)
    assert names["web-1"] != names["web-2"], names
    assert "web-1" in names["web-1"] and "conf/context.xml" in names["web-1"], names
    sm = aws("secretsmanager")
    for host, password in (("web-1", HOST_A_PW), ("web-2", HOST_B_PW)):
        value = json.loads(sm.get_secret_value(SecretId=names[host])["SecretString"])
        assert value["password"] == password


def test_two_copies_under_one_path_in_one_run_are_told_apart_with_hosts(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Two hosts' Tomcats copied to /mnt/web-1 and /mnt/web-2 and scanned in one run: the
    default template has <host> and <path> already, so the refusal names the fix that works
    (`hosts:`), and with it both are migrated, each to its own secret."""
    roots = [_tomcat(tmp_path / "web-1", HOST_A_PW), _tomcat(tmp_path / "web-2", HOST_B_PW)]
    with pytest.raises(MigrateError, match=r"hosts:") as err:
        commands.plan(settings, str(_book(tmp_path, roots)))
    assert "Add <" not in str(err.value)
    hosts = f'      hosts: {{"{roots[0]}": web-1, "{roots[1]}": web-2}}\n'
    _run(settings, _book(tmp_path, roots, hosts, "hosts.yaml"))
    assert _value(aws, "web-1/conf/context.xml/jdbc-app")["password"] == HOST_A_PW
    assert _value(aws, "web-2/conf/context.xml/jdbc-app")["password"] == HOST_B_PW


def test_the_plan_names_the_real_driver_the_wrapper_must_load(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """An old Connector/J (com.mysql.jdbc.Driver) in a legacy Tomcat: the wrapper replaces
    driverClassName and loads its own choice of real driver unless told, so the plan says how
    to name the one the application has, and where."""
    root = tmp_path / "legacy"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "context.xml").write_bytes(
        _context_xml(HOST_A_PW).replace(b"com.mysql.cj.jdbc.Driver", b"com.mysql.jdbc.Driver")
    )
    _, plan = commands.plan(settings, str(_book(tmp_path, [root], "      host: web-a\n")))
    (rewrite,) = [a for a in plan.steps[1].actions if a.kind == "config.rewrite"]
    (need,) = [r for r in rewrite.risks if "realDriverClass" in r]
    assert "-Ddrivers.mysql.realDriverClass=com.mysql.jdbc.Driver" in need
    assert "setenv.sh" in need and "AWS_REGION" in need


def test_secrets_check_says_when_the_wrapper_would_find_no_username_or_password(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """The JDBC wrapper logs in with the secret's username and password keys: a secret made by
    hand with other key names resolves, but the application could not log in. Only key names
    are reported, never a value."""
    sm = aws("secretsmanager")
    sm.create_secret(Name="hand/made", SecretString='{"user": "app", "pass": "Hand-Made-Pw-9"}')
    conf = tmp_path / "t" / "conf"
    conf.mkdir(parents=True)
    (conf / "context.xml").write_text(
        '<?xml version="1.0"?>\n<Context>\n  <Resource name="jdbc/app" type="javax.sql.DataSource" '
        'driverClassName="com.amazonaws.secretsmanager.sql.AWSSecretsManagerMySQLDriver" '
        'url="jdbc-secretsmanager:mysql://db.internal:3306/app" username="hand/made"/>\n'
        "</Context>\n"
    )
    result = commands.secrets_check(settings, [str(tmp_path / "t")])
    (ref,) = [r for r in result["references"] if r["target"] == "hand/made"]
    assert ref["ok"] is False and "no password and no username key" in ref["problem"]
    assert "pass, user" in ref["problem"] and "Hand-Made-Pw-9" not in json.dumps(result)


def test_secrets_by_host_says_what_each_hosts_application_now_reads(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """The output iam.keys_to_roles' host_secrets takes ({host: [secret]}): known while
    planning and published after the run, so a playbook can hand it to the step that builds
    the host's role instead of an operator typing it again."""
    roots = [_tomcat(tmp_path / "web-1", HOST_A_PW), _tomcat(tmp_path / "web-2", HOST_B_PW)]
    hosts = f'      hosts: {{"{roots[0]}": web-1, "{roots[1]}": web-2}}\n'
    book = _book(tmp_path, roots, hosts)
    _, plan = commands.plan(settings, str(book))
    wanted = {
        "web-1": ["web-1/conf/context.xml/jdbc-app"],
        "web-2": ["web-2/conf/context.xml/jdbc-app"],
    }
    assert plan.steps[1].planned_outputs["secrets_by_host"] == wanted
    run_id = _run(settings, book)
    step = commands.status(settings, run_id)["steps"][1]
    assert step["outputs"]["secrets_by_host"] == wanted
