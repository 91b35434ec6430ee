//! ClickHouse: the connection, the schema migrations and the row types written to it.

pub mod migrations;
pub mod rejected_ttl;
pub mod rows;

use std::future::Future;
use std::time::Duration;

use clickhouse::Client;

use crate::config::Config;
use crate::error::StorageError;

/// A ClickHouse client bound to Eventline's database, with a timeout on every call.
#[derive(Clone)]
pub struct Store {
    client: Client,
    timeout: Duration,
}

impl Store {
    /// A store for the configured server and database (nothing is contacted yet).
    pub fn new(config: &Config) -> Store {
        Store {
            client: server_client(config).with_database(&config.clickhouse_database),
            timeout: config.clickhouse_timeout(),
        }
    }

    /// The same store with another timeout (for long statements such as erasure deletes).
    pub fn with_timeout(&self, timeout: Duration) -> Store {
        Store {
            client: self.client.clone(),
            timeout,
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a ClickHouse call with the configured timeout.
    pub async fn timed<T, F>(&self, call: F) -> Result<T, StorageError>
    where
        F: Future<Output = Result<T, clickhouse::error::Error>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(StorageError::from),
            Err(_) => Err(StorageError::Timeout(self.timeout)),
        }
    }

    /// Inserts rows into `table` in one statement, with the configured timeout.
    pub async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<(), StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let write = async {
            let mut insert = self.client.insert::<T>(table).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        };
        self.timed(write).await
    }

    /// Whether ClickHouse answers a trivial query.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.timed(self.client.query("SELECT 1").fetch_one::<u8>())
            .await
            .map(|_| ())
    }
}

/// A client for the configured server with no database selected.
pub fn server_client(config: &Config) -> Client {
    let mut client = Client::default()
        .with_url(&config.clickhouse_url)
        .with_user(&config.clickhouse_user);
    if !config.clickhouse_password.is_empty() {
        client = client.with_password(&config.clickhouse_password);
    }
    client
}
