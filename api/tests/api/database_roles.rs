//! The runtime database role cannot change the schema: `api migrate` applies the migrations as
//! the schema owner (`DATABASE_MIGRATE_URL`), and the api and the workers run as a role with
//! data privileges only (`deploy/postgres/runtime-role.sql`), checking the schema instead of
//! migrating it (`MIGRATE_ON_START=false`).

use crate::helpers::{Shop, start};
use common::testing::{TestEnv, admin_database_url};
use sqlx::Connection;
use std::path::Path;

/// A login role with no privilege but what `runtime-role.sql` grants; dropped with this value
/// (declare it before the app, so it outlives the app and its database).
struct RuntimeRole {
    name: String,
    url: String,
}

impl RuntimeRole {
    async fn create(env: &TestEnv) -> RuntimeRole {
        // Named after the test database, whose name `scripts/test` recognises.
        let name = format!("{}_app", env.database_name);
        let mut admin = sqlx::PgConnection::connect(&admin_database_url())
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"#
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        let mut url = reqwest::Url::parse(&env.database_url).unwrap();
        url.set_username(&name).unwrap();
        RuntimeRole {
            name,
            url: url.to_string(),
        }
    }

    /// Runs the shipped grants as the schema owner, as the runbook says (`psql -v app_role=…`).
    async fn grant(&self, env: &TestEnv) {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres/runtime-role.sql");
        let sql = std::fs::read_to_string(file)
            .unwrap()
            .replace(r#":"app_role""#, &format!(r#""{}""#, self.name));
        let mut owner = sqlx::PgConnection::connect(&env.database_url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut owner)
            .await
            .unwrap();
    }
}

impl Drop for RuntimeRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_database_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        r#"DROP ROLE IF EXISTS "{name}""#
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A database migrated by `api migrate` as its owner, with a runtime role granted its data.
/// The release step is given the runtime role as DATABASE_URL: it must not use it.
async fn migrated_with_runtime_role() -> (RuntimeRole, TestEnv) {
    let env = TestEnv::new().await;
    let role = RuntimeRole::create(&env).await;
    let release = env.config_with(&[
        ("DATABASE_URL", role.url.as_str()),
        ("DATABASE_MIGRATE_URL", env.database_url.as_str()),
    ]);
    api::release::migrate(&release).await.expect("api migrate");
    role.grant(&env).await;
    (role, env)
}

#[tokio::test]
async fn the_api_and_the_workers_run_as_a_role_with_data_privileges_only() {
    let (role, env) = migrated_with_runtime_role().await;
    let runtime = [
        ("DATABASE_URL", role.url.as_str()),
        ("MIGRATE_ON_START", "false"),
    ];
    let config = env.config_with(&runtime);
    let workers = env.config_with(&runtime);
    let app = start(env, config).await;
    app.start_workers(workers).await;
    let shop = Shop::around(app).await;

    let mug = shop.products().create("Mug", 1250, 5).await;
    let order = shop.confirmed_order(mug, 2).await;
    let cancelled = shop.orders().cancel_settled(&shop.customer, &order).await;

    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(shop.products().stock_of(mug).await, 5);
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&shop.state.db)
        .await
        .unwrap();
    assert_eq!(user, role.name, "the api's pool is the runtime role's");
}

#[tokio::test]
async fn the_runtime_role_cannot_change_the_schema() {
    let (role, _env) = migrated_with_runtime_role().await;
    let mut runtime = sqlx::PgConnection::connect(&role.url).await.unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut runtime)
        .await
        .unwrap();
    assert_eq!(orders, 0, "it reads the data");

    for ddl in [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE orders ADD COLUMN intruder int",
        "ALTER TABLE orders DROP CONSTRAINT orders_correlation_id_bounded",
        "ALTER TABLE orders DISABLE TRIGGER orders_touch",
        "CREATE INDEX intruder ON orders (status)",
        "DROP TABLE orders",
        "TRUNCATE orders",
        "ALTER TABLE orders OWNER TO CURRENT_USER",
        "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99999, 'intruder', true, '\\x00', 0)",
        "DELETE FROM _sqlx_migrations",
    ] {
        let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&mut runtime)
            .await
            .expect_err(ddl);
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "{ddl}: {refused}");
    }
}

#[tokio::test]
async fn without_migrating_at_start_the_api_and_the_workers_refuse_a_schema_not_migrated() {
    let env = TestEnv::new().await;
    let config = env.config_with(&[("MIGRATE_ON_START", "false")]);

    let api = api::Application::build(config.clone()).await;
    let workers = workers::Workers::build(config, workers::Kind::ALL.to_vec()).await;

    for refused in [api.err(), workers.err()] {
        let said = refused.expect("refused to start").to_string();
        assert!(said.contains("api migrate"), "{said}");
    }
    let mut db = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nothing was migrated");
}
