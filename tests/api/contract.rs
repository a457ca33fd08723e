//! The source contract and production behaviour: c360's own schemas fulfil the contract
//! on every engine, `check` names what a deployer's schema lacks (views over other tables
//! do), and in production c360 never migrates or seeds the company's systems unasked.

use std::process::Command;

use c360::sources::contract::{self, Kind, Problem};
use c360::sources::{SourceName, SqlTrace};

use crate::helpers::{Backend, Layout, TestApp};

async fn own_schemas_fulfil_the_contract(backend: Backend) {
    let layout = Layout::all(backend);
    let app = TestApp::spawn(layout, 0).await;
    for source in SourceName::ALL {
        let problems =
            contract::check(app.sources.source(source), c360::sources::contract(source)).await.expect("check");
        assert_eq!(problems, vec![], "{source} on {backend:?}");
    }
}

#[tokio::test]
async fn own_schemas_fulfil_the_contract_on_sqlite() {
    own_schemas_fulfil_the_contract(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn own_schemas_fulfil_the_contract_on_postgres() {
    own_schemas_fulfil_the_contract(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn own_schemas_fulfil_the_contract_on_mysql() {
    own_schemas_fulfil_the_contract(Backend::Mysql).await;
}

#[tokio::test]
async fn check_names_what_a_schema_lacks_and_accepts_views() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let run = |db: &c360::sources::Database, sql: &'static str| {
        let db = db.clone();
        async move { db.execute(&SqlTrace::default(), sql, &[]).await.expect(sql) }
    };
    // The CRM's customers live under another name, behind a view: that is fine.
    run(app.sources.crm(), "alter table customers rename to people").await;
    run(app.sources.crm(), "create view customers as select * from people").await;
    run(app.sources.crm(), "drop table notes").await;
    // The shop's catalogue keys products by number and has no categories.
    run(app.sources.shop(), "drop table products").await;
    run(app.sources.shop(), "create table products (sku integer primary key, name text)").await;

    let crm = contract::check(app.sources.crm(), c360::sources::contract(SourceName::Crm)).await.expect("check");
    assert_eq!(crm, vec![Problem::MissingTable { table: "notes", about: "notes by staff (written by addNote)" }]);
    let shop = contract::check(app.sources.shop(), c360::sources::contract(SourceName::Shop)).await.expect("check");
    assert_eq!(
        shop,
        vec![
            Problem::WrongType { table: "products", column: "sku", kind: Kind::Text, found: "INTEGER".into() },
            Problem::MissingColumn { table: "products", column: "category", kind: Kind::Text },
        ]
    );
    assert_eq!(shop[0].to_string(), "`products.sku` is `INTEGER`, expected text");
}

/// Runs the `c360` binary with `args` in a fresh data directory and the environment `env`.
fn c360(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_c360"));
    command.args(args).env("C360_DATA_DIR", dir).env("C360_LOG", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run c360")
}

/// The tables of an SQLite file (none when it does not exist), without sqlx's own.
async fn tables(path: &std::path::Path) -> Vec<String> {
    use sqlx::Connection;
    let Ok(mut c) = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display())).await else {
        return vec![];
    };
    let sql = "select name from sqlite_master where type = 'table' and name not like '\\_sqlx%' escape '\\'
               and name not like 'sqlite\\_%' escape '\\' order by name";
    sqlx::query_scalar::<_, String>(sql).fetch_all(&mut c).await.expect("tables")
}

#[tokio::test]
async fn production_leaves_the_sources_alone_unless_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let production = [("C360_ENVIRONMENT", "production")];

    let migrated = c360(dir.path(), &production, &["migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(
        tables(&dir.path().join("hub.db")).await.contains(&"identity_links".to_owned()),
        "the hub store is c360's own"
    );
    for source in ["crm", "shop", "helpdesk", "marketing"] {
        assert_eq!(tables(&dir.path().join(format!("{source}.db"))).await, Vec::<String>::new(), "{source} untouched");
    }

    let seeded = c360(dir.path(), &production, &["seed", "--customers", "10"]);
    assert!(!seeded.status.success());
    assert!(String::from_utf8_lossy(&seeded.stderr).contains("refused in production"));
    assert_eq!(tables(&dir.path().join("crm.db")).await, Vec::<String>::new());

    // `check` says what is missing, and fails.
    let checked = c360(dir.path(), &production, &["check"]);
    assert!(!checked.status.success());
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(report.contains("crm: table or view `customers` is missing"), "{report}");

    // Asked for explicitly, the sources are migrated; then the contract holds.
    let asked = c360(dir.path(), &production, &["migrate", "--sources"]);
    assert!(asked.status.success(), "{}", String::from_utf8_lossy(&asked.stderr));
    assert!(tables(&dir.path().join("crm.db")).await.contains(&"customers".to_owned()));
    let checked = c360(dir.path(), &production, &["check"]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
    assert_eq!(String::from_utf8_lossy(&checked.stdout).lines().filter(|l| l.ends_with("tables)")).count(), 4);
}
