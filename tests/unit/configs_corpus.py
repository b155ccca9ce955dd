"""A corpus of realistic legacy config files holding credentials (all fake), for the config tests.

``CORPUS`` maps a relative path to the file's exact bytes; ``MOVED`` lists, per file, the keys the
default styles move; ``SECRET_VALUES`` every credential value seeded (tests grep for them).
"""

from __future__ import annotations

DB_HOST = "legacy-mysql.c9akciq32.us-east-1.rds.amazonaws.com"
PG_HOST = "legacy-postgres.c9akciq32.us-east-1.rds.amazonaws.com"

TOMCAT_PW = "Tomcat-Legacy-2019!"
XML_ENTITY_PW = "p&ss<\"wo'rd>!"  # written with XML entities
ORDERS_PW = "0rders#Pa55"
REPORTS_PW = "Reports-Pass-2020"
URL_PW = "inUrlS3cret"
KEYSTORE_PW = "K3ystore-Pass"
PROPS_ESCAPED_PW = "päss=wörd:with spaces"  # written with escapes
PROPS_CONT_PW = "continued-secret-value"  # written over two lines
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSANDBOXFAKE"
API_TOKEN = "tok_live_sandbox_4f9c2a7e1b3d5f60a8c2"
ENV_QUOTED = "quoted value # not a comment"
ENV_SINGLE = "single$quoted\\n"
ENV_EXPORT = "export-me-Secret1"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
YAML_ANCHOR_PW = "anch0red-Pass"
YAML_QUOTED_PW = "yaml: 'quoted' # pass"
JSON_PW = 'json"pass\\word'
JSON_TOKEN = "json-api-token-1234567890"
INI_PW = "ini-Pa$$word"
INI_MULTI = "line-one-secret"
LATIN1_PW = "Mot-de-passe-été"
CRLF_PW = "crlf-Pass-1"
BOM_PW = "bom-Pass-2"
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEAfakefakefakefakefakeKEYBODY"
REDIS_PW = "redis-Pass-3"
SMTP_PW = "smtp-Pass-4"
MYCNF_PW = "mycnf-Pass-5"
TOMCAT_ADMIN_PW = "Admin-Tomcat-7"
TOMCAT_DEPLOY_PW = "Deploy&Pass-8"  # written as &amp;
MAVEN_PW = "Nexus-R3lease&Pass"  # element text, written as &amp;
MAVEN_CDATA_PW = "Snap<shot>-Pass"  # element text in CDATA, on its own line
PROXY_PW = "Pr0xy-Pass"
SQLSERVER_PW = "Sq1-Ledger-Pass"  # ;password= in a JDBC URL under a non-credential key
URL_SPECIAL_PW = "Pa$$!w0rd-9"  # user:password@ with characters detect-secrets skips
JWT_VALUE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsZWdhY3ktcmVwb3J0cyIsImlzcyI6ImxlZ2FjeSJ9"
    ".c2FuZGJveC1zaWduYXR1cmUtbm90LXJlYWw"
)
IMPORT_LIST_PW = "Ledger-Yaml-Pass"
IMPORT_SCALAR_PW = "Mail-Import-Pass"
MULTIDOC_PW = "Multi-Doc-Pass"
ORACLE_PW = "0racle-Thin-Pass"  # jdbc:oracle:thin:user/password@
ORACLE_HOST = "ora.internal"
SPRING_BEAN_PW = "Spring-Bean-Pass"  # <property name="password" value=...>
UTIL_PROPS_PW = "Util-Props-Pass"  # <util:properties><prop key="db.password">
HIBERNATE_PW = "Hibernate-Cfg-Pass"  # <property name="hibernate.connection.password">text
POOL_PW = "Pool-Props-Pass"  # connectionProperties="user=..;password=.."
WILDFLY_PW = "WildFly-DS-Pass"  # standalone.xml <datasource><security><password>
PGPASS_PW = "pg:pass-Word"  # written as pg\:pass-Word in .pgpass
NETRC_PW = "Netrc-Git-Pass"
PROFILE_DEV_PW = "Dev-Profile-Pass"
PROFILE_PROD_PW = "Prod-Profile-Pass"
YAML_DEV_PW = "Yaml-Dev-Pass"
YAML_PROD_PW = "Yaml-Prod-Pass"
UTF8_PROPS_PW = "Passé-UTF8"  # UTF-8 bytes in a .properties: Java reads them as ISO-8859-1
MYCNF_QUOTED_PW = "My Quoted#Pass"  # "..." in my.cnf: MySQL strips the quotes

SECRET_VALUES = (
    ORACLE_PW,
    SPRING_BEAN_PW,
    UTIL_PROPS_PW,
    HIBERNATE_PW,
    POOL_PW,
    WILDFLY_PW,
    PGPASS_PW,
    NETRC_PW,
    MYCNF_QUOTED_PW,
    UTF8_PROPS_PW,
    PROFILE_DEV_PW,
    YAML_DEV_PW,
    YAML_PROD_PW,
    PROFILE_PROD_PW,
    TOMCAT_PW,
    XML_ENTITY_PW,
    ORDERS_PW,
    REPORTS_PW,
    URL_PW,
    KEYSTORE_PW,
    PROPS_ESCAPED_PW,
    PROPS_CONT_PW,
    AWS_SECRET,
    API_TOKEN,
    ENV_QUOTED,
    ENV_EXPORT,
    GH_TOKEN,
    YAML_ANCHOR_PW,
    YAML_QUOTED_PW,
    JSON_TOKEN,
    INI_PW,
    INI_MULTI,
    LATIN1_PW,
    CRLF_PW,
    BOM_PW,
    PRIVATE_KEY_BODY,
    REDIS_PW,
    SMTP_PW,
    MYCNF_PW,
    TOMCAT_ADMIN_PW,
    TOMCAT_DEPLOY_PW,
    MAVEN_PW,
    MAVEN_CDATA_PW,
    PROXY_PW,
    SQLSERVER_PW,
    URL_SPECIAL_PW,
    JWT_VALUE,
    IMPORT_LIST_PW,
    IMPORT_SCALAR_PW,
    MULTIDOC_PW,
)

CORPUS: dict[str, bytes] = {
    # 1. The talk's Tomcat datasource, one long line as on the box.
    "tomcat/conf/context.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Legacy app datasource. Edited by hand on the box since 2017 (ticket OPS-1422). -->
<Context>
    <WatchedResource>WEB-INF/web.xml</WatchedResource>
    <Resource name="jdbc/legacy" auth="Container" type="javax.sql.DataSource" driverClassName="com.mysql.cj.jdbc.Driver" url="jdbc:mysql://{DB_HOST}:3306/app" username="app" password="{TOMCAT_PW}" maxTotal="50" maxIdle="10" maxWaitMillis="10000"/>
    <!-- TODO: move the password out of this file -->
</Context>
""".encode(),
    # 2. Several resources, multi-line attributes, entities, single quotes, URL credentials,
    #    a commented-out old resource, an Environment entry and a reference already in place.
    "tomcat/conf/Catalina/localhost/shop.xml": f"""\
<?xml version='1.0' encoding='utf-8'?>
<Context path="/shop" reloadable="false">
  <!-- old DB, kept for reference: <Resource name="jdbc/old" password="OldPass-1999"/> -->
  <Resource name="jdbc/orders"
            auth="Container"
            type="javax.sql.DataSource"
            driverClassName="org.postgresql.Driver"
            url="jdbc:postgresql://{PG_HOST}:5432/orders?ssl=true&amp;sslmode=require"
            username="orders"
            password="{ORDERS_PW}"
            maxTotal="20"/>
  <Resource name='jdbc/entity' auth='Container' type='javax.sql.DataSource'
            url='jdbc:mysql://{DB_HOST}:3306/entity' username='ent'
            password='p&amp;ss&lt;"wo&apos;rd&gt;&#33;'/>
  <Resource name="jdbc/inurl" type="javax.sql.DataSource"
            url="jdbc:mysql://svc:{URL_PW}@{DB_HOST}:3306/svc"/>
  <Resource name="jdbc/managed" type="javax.sql.DataSource"
            url="jdbc:mysql://{DB_HOST}:3306/m" username="m" password="${{db.m.password}}"/>
  <Environment name="api.token" value="{API_TOKEN}" type="java.lang.String" override="false"/>
  <Environment name="feature.flags" value="a,b,c" type="java.lang.String"/>
</Context>
""".encode(),
    # 3. server.xml: a global resource and a TLS connector with a keystore password.
    "tomcat/conf/server.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<Server port="8005" shutdown="SHUTDOWN">
  <GlobalNamingResources>
    <Resource name="UserDatabase" auth="Container" type="org.apache.catalina.UserDatabase"
              factory="org.apache.catalina.users.MemoryUserDatabaseFactory"
              pathname="conf/tomcat-users.xml" />
    <Resource name="jdbc/reports" auth="Container" type="javax.sql.DataSource"
              driverClassName="org.postgresql.Driver"
              url="jdbc:postgresql://{PG_HOST}:5432/reports"
              username="reports" password="{REPORTS_PW}"/>
  </GlobalNamingResources>
  <Service name="Catalina">
    <Connector port="8443" protocol="org.apache.coyote.http11.Http11NioProtocol" SSLEnabled="true"
               keystoreFile="conf/keystore.jks" keystorePass="{KEYSTORE_PW}"/>
  </Service>
</Server>
""".encode(),
    # 4. Latin-1 XML with a declared encoding and a non-ASCII password.
    "tomcat/conf/latin1-context.xml": (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        "<!-- Base de donn\u00e9es de l'\u00e9t\u00e9 -->\n"
        "<Context>\n"
        f'  <Resource name="jdbc/fr" url="jdbc:mysql://{DB_HOST}:3306/fr" username="fr"'
        f' password="{LATIN1_PW}"/>\n'
        "</Context>\n"
    ).encode("iso-8859-1"),
    # 5. Not well-formed XML: reported, left untouched.
    "tomcat/conf/broken-context.xml": b'<Context>\n  <Resource name="jdbc/x" password="not-moved-broken-1">\n</Context>\n',
    # 6. The seeded properties file.
    "app/application.properties": f"""\
# Legacy application settings (edited on the box, not in git)
server.port=8080
app.name=legacy-app

# Database
db.url=jdbc:mysql://{DB_HOST}:3306/app
db.username=app
db.password={TOMCAT_PW}
db.pool.size=20

# AWS
aws.region=us-east-1
aws.accessKey=AKIAIOSFODNN7SANDBOX
aws.secretKey={AWS_SECRET}
s3.bucket=legacy-app-data
logging.level.root=INFO
""".encode(),
    # 7. Properties with escapes, unicode escapes, continuations, ':' separators, '!' comments.
    "app/escapes.properties": (
        "! Escapes and continuations, written by a Java 6 tool\n"
        "greeting = Hello\\tWorld\n"
        "mail.smtp.password : p\\u00e4ss\\=w\\u00f6rd\\:with\\ spaces\n"
        "cache.token = continued-\\\n"
        "               secret-value\n"
        "path.with\\ space = C:\\\\tmp\n"
        "# db.password=commented-out-not-a-finding\n"
        "trailing.key = last\n"
    ).encode("iso-8859-1"),
    # 8. CRLF properties.
    "app/crlf.properties": f"server.port=9090\r\n# comment\r\ndb.password={CRLF_PW}\r\ndb.user=crlf\r\n".encode(),
    # 9. Properties with references and placeholders only: nothing moves.
    "app/references.properties": (
        b"db.password=${DB_PASSWORD}\n"
        b"api.token={{resolve:secretsmanager:prod/api:SecretString:token}}\n"
        b"legacy.secret=ENC(G6N718UuyPE5bHyWKyuLQSm02auQPUtm)\n"
        b"smtp.password=\n"
        b"ldap.password=changeme\n"
        b"password.file=/etc/app/password.txt\n"
    ),
    # 10. Properties already importing other config: spring-import refuses, reported untouched.
    "app/imports.properties": f"spring.config.import=optional:file:./extra.properties\nredis.password={REDIS_PW}\n".encode(),
    # 11. The seeded .env.
    "app/.env": f"""\
# Environment for the reporting worker
APP_ENV=production
DATABASE_URL=postgres://reports:{REPORTS_PW}@{PG_HOST}:5432/reports
API_TOKEN={API_TOKEN}
LOG_LEVEL=info
REPORT_BUCKET=legacy-app-data
""".encode(),
    # 12. .env with export, quotes, inline comments and a multi-line private key.
    "worker/.env.production": (
        "# worker\n"
        f"export SESSION_SECRET={ENV_EXPORT}\n"
        f'QUOTED_SECRET="{ENV_QUOTED}"\n'
        f"SINGLE_TOKEN='{ENV_SINGLE}'  # literal\n"
        "EMPTY_PASSWORD=\n"
        'PLACEHOLDER_TOKEN="${FROM_VAULT}"\n'
        'TLS_KEY="-----BEGIN RSA PRIVATE KEY-----\n'
        f"{PRIVATE_KEY_BODY}\n"
        '-----END RSA PRIVATE KEY-----"\n'
        "WORKERS=4\n"
    ).encode(),
    # 13. .env with a value shape under an innocent name.
    "ci/build.env": f"GITHUB=  {GH_TOKEN}\nBUILD_DIR=/tmp/build\n".encode(),
    # 14. The seeded Spring YAML.
    "app/application.yml": f"""\
# Spring Boot settings for the reporting service
server:
  port: 8081
spring:
  application:
    name: legacy-reports
  datasource:
    url: jdbc:postgresql://{PG_HOST}:5432/reports
    username: reports
    password: {REPORTS_PW}
    driver-class-name: org.postgresql.Driver
  jpa:
    hibernate:
      ddl-auto: none  # schema is managed by hand
management:
  endpoints:
    web:
      exposure:
        include: health,info
""".encode(),
    # 15. YAML with an anchor used by an alias: spring-import refuses (reported untouched).
    "app/anchors.yml": f"""\
defaults: &defaults
  password: &pw {YAML_ANCHOR_PW}
  pool: 5
prod:
  <<: *defaults
  replica-password: *pw
""".encode(),
    # 16. YAML, quoted value with a comment, CRLF line ends.
    "app/quoted.yaml": (
        "# crlf yaml\r\n"
        "redis:\r\n"
        "  host: cache.internal\r\n"
        f'  password: "{YAML_QUOTED_PW}"   # keep this comment\r\n'
        "  port: 6379\r\n"
    ).encode(),
    # 17. Unparseable YAML.
    "app/broken.yml": b"spring:\n  datasource:\n    password: [unclosed\n",
    # 18. JSON with nested keys and escapes.
    "web/config.json": (
        "{\n"
        '  "name": "legacy-web",\n'
        '  "database": {"host": "db", "user": "web", "password": "json\\"pass\\\\word"},\n'
        f'  "services": [{{"name": "maps", "apiKey": "{JSON_TOKEN}"}}],\n'
        '  "retries": 3\n'
        "}\n"
    ).encode(),
    # 19. JSON without credentials (compliant).
    "web/feature-flags.json": b'{"beta": true, "tokenizer": "standard-v2", "limits": [1, 2]}\n',
    # 20. Broken JSON.
    "web/broken.json": b'{"password": "not-moved-json-2",}\n',
    # 21. INI with sections, ';' comments and a continuation line.
    "etc/app.ini": f"""\
; legacy INI
[database]
host = db.internal
user = legacy
password = {INI_PW}

[cache]
secret: {INI_MULTI}
  continued-part
ttl = 60
""".encode(),
    # 22. MySQL option file.
    "etc/my.cnf": f"[client]\nuser=backup\npassword={MYCNF_PW}\nhost=localhost\n".encode(),
    # 23. UTF-8 with BOM properties.
    "app/bom.properties": ("\ufeff" + f"db.password={BOM_PW}\n").encode("utf-8"),
    # 24. YAML for a mail relay, placeholder-only already.
    "app/mail.yml": b"mail:\n  host: smtp.internal\n  password: ${SMTP_PASSWORD}\n",
    # 25. XML config of a job runner with an SMTP password on a non-Resource element.
    "jobs/notifier.xml": f'<?xml version="1.0"?>\n<notifier>\n  <smtp host="smtp.internal" user="jobs" password="{SMTP_PW}"/>\n</notifier>\n'.encode(),
    # 26. A README that is not a config format (ignored in directories).
    "app/README.txt": b"password=not-a-config-file\n",
    # 27. tomcat-users.xml as shipped (namespaced root), example users commented out, two users.
    "tomcat/conf/tomcat-users.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml"
              xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
              xsi:schemaLocation="http://tomcat.apache.org/xml tomcat-users.xsd"
              version="1.0">
<!--
  <user username="admin" password="<must-be-changed>" roles="manager-gui"/>
  <user username="robot" password="Robot-Old-1" roles="manager-script"/>
-->
  <role rolename="manager-gui"/>
  <role rolename="manager-script"/>
  <user username="admin" password="{TOMCAT_ADMIN_PW}" roles="manager-gui"/>
  <user username="deployer" password='Deploy&amp;Pass-8' roles="manager-script"/>
</tomcat-users>
""".encode(),
    # 28. Maven settings.xml: passwords in element text (entity, CDATA on its own line), one
    #     already from the environment, one in a comment, a proxy password; CRLF line ends.
    "maven/settings.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
          xsi:schemaLocation="http://maven.apache.org/SETTINGS/1.0.0 https://maven.apache.org/xsd/settings-1.0.0.xsd">
  <localRepository>/var/maven/repo</localRepository>
  <servers>
    <server>
      <id>nexus-releases</id>
      <username>deploy</username>
      <password>Nexus-R3lease&amp;Pass</password>
    </server>
    <server>
      <id>nexus-snapshots</id>
      <username>deploy</username>
      <password>
        <![CDATA[{MAVEN_CDATA_PW}]]>
      </password>
    </server>
    <server>
      <id>docker-hub</id>
      <username>ci</username>
      <password>${{env.DOCKER_PASSWORD}}</password>
    </server>
    <!-- <server><id>old</id><password>Old-Maven-Pass</password></server> -->
  </servers>
  <proxies>
    <proxy>
      <id>corp</id>
      <host>proxy.corp</host>
      <port>3128</port>
      <username>svc-proxy</username>
      <password>{PROXY_PW}</password>
    </proxy>
  </proxies>
</settings>
""".replace("\n", "\r\n").encode(),
    # 29. Credentials found by value shape only, under keys that do not say so: a SQL Server
    #     URL with ;password=, a URL password with $ and ! (detect-secrets skips both), a JWT.
    "app/datasources.properties": f"""\
# Datasources of the batch jobs (legacy, by hand)
ledger.url=jdbc:sqlserver://mssql.internal:1433;databaseName=ledger;user=ledger;password={SQLSERVER_PW}
batch.url=jdbc:mysql://batch:{URL_SPECIAL_PW}@batch-db.internal:3306/batch
reports.session.seed={JWT_VALUE}
batch.pool=4
""".encode(),
    # 30. Spring YAML that already imports config (a list): the secret is added to the list.
    "app/imports-list.yml": f"""\
# Ledger service
spring:
  config:
    import:
      - optional:file:./shared.yml   # shared by every service
      - optional:configtree:/run/secrets/
  datasource:
    url: jdbc:postgresql://{PG_HOST}:5432/ledger
    username: ledger
    password: {IMPORT_LIST_PW}
""".encode(),
    # 31. Spring YAML with a dotted, quoted scalar import: the secret is appended to it.
    "app/imports-scalar.yaml": f"""\
spring.config.import: "optional:file:./local.yaml"
mail:
  host: smtp.internal
  port: 587
  password: '{IMPORT_SCALAR_PW}'
""".encode(),
    # 32. Multi-document properties (#---) that already import: spring-import refuses.
    "app/multidoc.properties": f"""\
spring.config.import=optional:file:./base.properties
db.password={MULTIDOC_PW}
#---
spring.config.activate.on-profile=prod
db.pool=50
""".encode(),
    # Oracle thin URL with user/password@ (no username/password attributes).
    "tomcat/conf/Catalina/localhost/ora.xml": f"""\
<Context>
  <Resource name="jdbc/ora" type="javax.sql.DataSource" driverClassName="oracle.jdbc.OracleDriver"
            url="jdbc:oracle:thin:scott/{ORACLE_PW}@//{ORACLE_HOST}:1521/LEGACY" maxTotal="20"/>
</Context>
""".encode(),
    # An "encrypted password" DataSourceFactory: the attribute holds ciphertext.
    "tomcat/conf/Catalina/localhost/enc.xml": b"""\
<Context>
  <Resource name="jdbc/enc" type="javax.sql.DataSource" factory="com.acme.EncryptedDataSourceFactory"
            url="jdbc:mysql://db.internal:3306/app" username="app" password="kV9x1wq0ZtL3p8eRyA=="/>
</Context>
""",
    # A pool keeping its credentials in connectionProperties.
    "tomcat/conf/Catalina/localhost/pool.xml": f"""\
<Context>
  <Resource name="jdbc/pool" type="javax.sql.DataSource"
            factory="org.apache.tomcat.jdbc.pool.DataSourceFactory"
            driverClassName="org.postgresql.Driver" url="jdbc:postgresql://{PG_HOST}:5432/app"
            connectionProperties="user=pool;password={POOL_PW};ssl=true"/>
</Context>
""".encode(),
    # Spring XML: a DBCP bean and <util:properties>.
    "spring/applicationContext.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:util="http://www.springframework.org/schema/util">
  <bean id="dataSource" class="org.apache.commons.dbcp2.BasicDataSource" destroy-method="close">
    <property name="driverClassName" value="com.mysql.cj.jdbc.Driver"/>
    <property name="url" value="jdbc:mysql://{DB_HOST}:3306/app"/>
    <property name="username" value="app"/>
    <property name="password" value="{SPRING_BEAN_PW}"/>
  </bean>
  <util:properties id="dbProps">
    <prop key="db.user">app</prop>
    <prop key="db.password">{UTIL_PROPS_PW}</prop>
  </util:properties>
</beans>
""".encode(),
    # Hibernate cfg with its DOCTYPE.
    "hibernate/hibernate.cfg.xml": f"""\
<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE hibernate-configuration PUBLIC "-//Hibernate/Hibernate Configuration DTD 3.0//EN"
  "http://www.hibernate.org/dtd/hibernate-configuration-3.0.dtd">
<hibernate-configuration>
  <session-factory>
    <property name="hibernate.connection.url">jdbc:postgresql://{PG_HOST}:5432/app</property>
    <property name="hibernate.connection.username">app</property>
    <property name="hibernate.connection.password">{HIBERNATE_PW}</property>
  </session-factory>
</hibernate-configuration>
""".encode(),
    # WildFly standalone.xml datasource.
    "wildfly/standalone.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<server xmlns="urn:jboss:domain:19.0">
  <profile>
    <subsystem xmlns="urn:jboss:domain:datasources:7.0">
      <datasources>
        <datasource jndi-name="java:jboss/datasources/AppDS" pool-name="AppDS">
          <connection-url>jdbc:mysql://{DB_HOST}:3306/app</connection-url>
          <driver>mysql</driver>
          <security>
            <user-name>app</user-name>
            <password>{WILDFLY_PW}</password>
          </security>
        </datasource>
      </datasources>
    </subsystem>
  </profile>
</server>
""".encode(),
    # Read literally by libpq and curl: found, never rewritten.
    "home/.pgpass": f"# replica\n{PG_HOST}:5432:app:app:{PGPASS_PW.replace(':', chr(92) + ':')}\n".encode(),
    "etc/mysql/conf.d/backup.cnf": (
        f'[client]\nuser = backup\npassword = "{MYCNF_QUOTED_PW}"  # rotated 2021\n'
    ).encode(),
    # Only a commented-out resource: nothing to move, but a password in plain text.
    "tomcat/conf/Catalina/localhost/old.xml": (
        b'<Context>\n  <!-- <Resource name="jdbc/old" password="Old-Commented-Pass"/> -->\n'
        b"</Context>\n"
    ),
    # Spring Boot profile documents: each its own secret and import.
    "app/profiles.properties": f"""\
db.url=jdbc:mysql://dev-db.internal:3306/app
db.password={PROFILE_DEV_PW}
#---
spring.config.activate.on-profile=prod
db.url=jdbc:mysql://{DB_HOST}:3306/app
db.password={PROFILE_PROD_PW}
""".encode(),
    # Multi-document YAML with a profile document.
    "app/profiles.yml": f"""\
app:
  password: {YAML_DEV_PW}
---
spring:
  config:
    activate:
      on-profile: prod
app:
  password: {YAML_PROD_PW}
""".encode(),
    # YAML 1.1 typed scalars: Spring's SnakeYAML reads 0123 as 83.
    "app/typed.yml": b"cache:\n  password: 0123\nqueue:\n  password: 424242\n",
    "app/utf8.properties": f"# saved by a UTF-8 editor\ndb.password={UTF8_PROPS_PW}\n".encode(),
    "home/.netrc": f"machine git.internal\n  login ci\n  password {NETRC_PW}\n".encode(),
}

# What the default styles move, per file: the keys (as the plan shows them).
MOVED: dict[str, set[str]] = {
    "tomcat/conf/Catalina/localhost/ora.xml": {"Resource[jdbc/ora]@url"},
    "tomcat/conf/Catalina/localhost/pool.xml": {"Resource[jdbc/pool]@connectionProperties"},
    "spring/applicationContext.xml": {
        "bean[dataSource]/property[password]@value",
        "properties[dbProps]/prop[db.password]",
    },
    "hibernate/hibernate.cfg.xml": {"session-factory[1]/property[hibernate.connection.password]"},
    "wildfly/standalone.xml": {"security[1]/password"},
    "app/utf8.properties": {"db.password"},
    "app/profiles.properties": {"db.password"},
    "app/profiles.yml": {"app.password"},
    "app/multidoc.properties": {"db.password"},
    "tomcat/conf/context.xml": {"Resource[jdbc/legacy]@password"},
    "tomcat/conf/Catalina/localhost/shop.xml": {
        "Resource[jdbc/orders]@password",
        "Resource[jdbc/entity]@password",
        "Resource[jdbc/inurl]@url",
        "Environment[api.token]@value",
    },
    "tomcat/conf/server.xml": {"Resource[jdbc/reports]@password", "Connector[1]@keystorePass"},
    "tomcat/conf/latin1-context.xml": {"Resource[jdbc/fr]@password"},
    "app/application.properties": {"db.password", "aws.secretKey"},
    "app/escapes.properties": {"mail.smtp.password", "cache.token"},
    "app/crlf.properties": {"db.password"},
    "app/.env": {"DATABASE_URL", "API_TOKEN"},
    "worker/.env.production": {"SESSION_SECRET", "QUOTED_SECRET", "SINGLE_TOKEN", "TLS_KEY"},
    "ci/build.env": {"GITHUB"},
    "app/application.yml": {"spring.datasource.password"},
    "app/quoted.yaml": {"redis.password"},
    "web/config.json": {"database.password", "services[0].apiKey"},
    "etc/app.ini": {"[database] password", "[cache] secret"},
    "app/bom.properties": {"db.password"},
    "jobs/notifier.xml": {"smtp[1]@password"},
    "app/imports.properties": {"redis.password"},
    "tomcat/conf/tomcat-users.xml": {"user[admin]@password", "user[deployer]@password"},
    "maven/settings.xml": {
        "server[nexus-releases]/password",
        "server[nexus-snapshots]/password",
        "proxy[corp]/password",
    },
    "app/datasources.properties": {"ledger.url", "batch.url", "reports.session.seed"},
    "app/imports-list.yml": {"spring.datasource.password"},
    "app/imports-scalar.yaml": {"mail.password"},
}
# Reported and left untouched.
# Found (so not compliant) but not rewritten: nothing would expand a reference there.
REFUSED: dict[str, set[str]] = {
    "home/.pgpass": {f"{PG_HOST}:5432:app:app/password"},
    "home/.netrc": {"machine[git.internal]/password"},
    "etc/my.cnf": {"[client] password"},
    "etc/mysql/conf.d/backup.cnf": {"[client] password"},
}
ERRORS = {
    "app/typed.yml",
    "tomcat/conf/Catalina/localhost/enc.xml",
    "home/.pgpass",
    "home/.netrc",
    "etc/my.cnf",
    "etc/mysql/conf.d/backup.cnf",
    "tomcat/conf/broken-context.xml",
    "app/anchors.yml",
    "app/broken.yml",
    "web/broken.json",
}
COMPLIANT = {"app/references.properties", "web/feature-flags.json", "app/mail.yml"}
