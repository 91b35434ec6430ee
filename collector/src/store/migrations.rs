//! Ordered schema migrations, embedded in the binary, applied once each and recorded.
//!
//! Files under `clickhouse/migrations/` are named `NNNN_description.sql` and never edited after
//! they land; a checksum recorded at apply time turns an edit into a start-up error instead of
//! a silently diverging schema.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::StorageError;
use crate::store::{server_client, Store};

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The number in its file name.
    pub version: u32,
    /// The file name.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
}

/// All migrations, in increasing version order. Versions need not be consecutive (work on
/// separate branches reserves numbers); each is applied once, whatever the order it lands in.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial_schema.sql",
        sql: include_str!("../../clickhouse/migrations/0001_initial_schema.sql"),
    },
    Migration {
        version: 2,
        name: "0002_admin_security.sql",
        sql: include_str!("../../clickhouse/migrations/0002_admin_security.sql"),
    },
    Migration {
        version: 3,
        name: "0003_quarantine_bounds.sql",
        sql: include_str!("../../clickhouse/migrations/0003_quarantine_bounds.sql"),
    },
    Migration {
        version: 4,
        name: "0004_audience_identity_profiles.sql",
        sql: include_str!("../../clickhouse/migrations/0004_audience_identity_profiles.sql"),
    },
    Migration {
        version: 5,
        name: "0005_event_catalog.sql",
        sql: include_str!("../../clickhouse/migrations/0005_event_catalog.sql"),
    },
    Migration {
        version: 6,
        name: "0006_segments.sql",
        sql: include_str!("../../clickhouse/migrations/0006_segments.sql"),
    },
    Migration {
        version: 7,
        name: "0007_known_customers.sql",
        sql: include_str!("../../clickhouse/migrations/0007_known_customers.sql"),
    },
    Migration {
        version: 8,
        name: "0008_campaigns.sql",
        sql: include_str!("../../clickhouse/migrations/0008_campaigns.sql"),
    },
    Migration {
        version: 9,
        name: "0009_campaign_runs.sql",
        sql: include_str!("../../clickhouse/migrations/0009_campaign_runs.sql"),
    },
    Migration {
        version: 10,
        name: "0010_event_context_index.sql",
        sql: include_str!("../../clickhouse/migrations/0010_event_context_index.sql"),
    },
    Migration {
        version: 11,
        name: "0011_partner_channels.sql",
        sql: include_str!("../../clickhouse/migrations/0011_partner_channels.sql"),
    },
    Migration {
        version: 12,
        name: "0012_campaign_fanouts.sql",
        sql: include_str!("../../clickhouse/migrations/0012_campaign_fanouts.sql"),
    },
    Migration {
        version: 13,
        name: "0013_message_content_parts.sql",
        sql: include_str!("../../clickhouse/migrations/0013_message_content_parts.sql"),
    },
    Migration {
        version: 14,
        name: "0014_campaign_schedules.sql",
        sql: include_str!("../../clickhouse/migrations/0014_campaign_schedules.sql"),
    },
    Migration {
        version: 15,
        name: "0015_campaign_checkpoints.sql",
        sql: include_str!("../../clickhouse/migrations/0015_campaign_checkpoints.sql"),
    },
    Migration {
        version: 16,
        name: "0016_campaign_shares.sql",
        sql: include_str!("../../clickhouse/migrations/0016_campaign_shares.sql"),
    },
    Migration {
        version: 17,
        name: "0017_event_keys.sql",
        sql: include_str!("../../clickhouse/migrations/0017_event_keys.sql"),
    },
];

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// ClickHouse refused or could not be reached.
    #[error("migration {name}: {source}")]
    Storage {
        /// The migration being applied (or `bootstrap`).
        name: String,
        /// The failure.
        source: StorageError,
    },
    /// An applied migration's file changed afterwards.
    #[error("migration {0} was edited after it was applied; add a new migration instead")]
    Edited(String),
    /// The database name is not a plain identifier.
    #[error("CLICKHOUSE_DATABASE `{0}` must be letters, digits and underscores")]
    BadDatabaseName(String),
}

#[derive(Row, Serialize, Deserialize)]
struct AppliedRow {
    version: u32,
    name: String,
    checksum: String,
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Splits a migration into statements: each ends with `;` at the end of a line.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

fn storage(name: &str) -> impl FnOnce(StorageError) -> MigrationError + '_ {
    move |source| MigrationError::Storage {
        name: name.to_string(),
        source,
    }
}

/// Creates the database if needed and applies every pending migration; returns how many ran.
pub async fn migrate(config: &Config) -> Result<usize, MigrationError> {
    let db = &config.clickhouse_database;
    if db.is_empty() || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(MigrationError::BadDatabaseName(db.clone()));
    }
    let store = Store::new(config).with_timeout(std::time::Duration::from_secs(
        config.migration_timeout_secs.max(1),
    ));
    let server = server_client(config);
    store
        .timed(
            server
                .query("CREATE DATABASE IF NOT EXISTS {db:Identifier}")
                .param("db", db.as_str())
                .execute(),
        )
        .await
        .map_err(storage("bootstrap"))?;
    let client = store.client();
    store
        .timed(
            client
                .query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations \
                     (version UInt32, name String, checksum String, \
                      applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
                     ENGINE = MergeTree ORDER BY version",
                )
                .execute(),
        )
        .await
        .map_err(storage("bootstrap"))?;
    let applied: Vec<AppliedRow> = store
        .timed(
            client
                .query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(),
        )
        .await
        .map_err(storage("bootstrap"))?;

    let mut ran = 0;
    for migration in MIGRATIONS {
        let sum = checksum(migration.sql);
        if let Some(done) = applied.iter().find(|a| a.version == migration.version) {
            if done.checksum != sum {
                return Err(MigrationError::Edited(migration.name.into()));
            }
            continue;
        }
        for statement in statements(migration.sql) {
            store
                .timed(client.query(&statement).execute())
                .await
                .map_err(storage(migration.name))?;
        }
        let mut insert = client
            .insert::<AppliedRow>("schema_migrations")
            .await
            .map_err(|e| storage(migration.name)(e.into()))?;
        let row = AppliedRow {
            version: migration.version,
            name: migration.name.into(),
            checksum: sum,
        };
        let done = async {
            insert.write(&row).await?;
            insert.end().await
        };
        store.timed(done).await.map_err(storage(migration.name))?;
        tracing::info!(migration = migration.name, "applied migration");
        ran += 1;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_match_their_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            if i > 0 {
                assert!(m.version > MIGRATIONS[i - 1].version, "{}", m.name);
            }
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn statements_split_at_line_ending_semicolons() {
        let sql = "-- comment; not a statement\nCREATE TABLE a\n(\n  x String COMMENT 'a;b'\n)\nENGINE = Log;\n\nSELECT 1;\n";
        let parts = statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("CREATE TABLE a") && parts[0].contains("'a;b'"));
        assert_eq!(parts[1], "SELECT 1");
        assert_eq!(statements(MIGRATIONS[0].sql).len(), 4);
    }
}
