//! `TestApp`: the real `Application` on 127.0.0.1:0 with a temporary SQLite file.

use std::path::Path;
use std::time::Duration;

use docpulse::config::{Config, Secret};
use docpulse::startup::Application;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long [`TestApp::stop`] waits for the server to stop before failing the test.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client for the server.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    /// Kept so the folder lives as long as the server.
    _data_dir: TempDir,
}

/// A test configuration: free port, data in `data_dir`, plus `extra` variables.
pub fn test_config(data_dir: &Path, extra: &[(&str, &str)]) -> Config {
    let data_dir = data_dir.display().to_string();
    Config::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(key, _)| *key == name) {
            return Some((*value).to_owned());
        }
        match name {
            "LEPTOS_SITE_ADDR" => Some("127.0.0.1:0".to_owned()),
            "DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        }
    })
    .expect("the test configuration is valid")
}

impl TestApp {
    /// Starts a server with a fresh data folder and secret.
    pub async fn spawn() -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        // A fresh secret, so no two test servers share keys.
        let secret = Secret::generate().expect("the OS has randomness");
        let config = test_config(data_dir.path(), &[("JWT_SECRET", secret.expose())]);
        Self::spawn_with(config, data_dir).await
    }

    /// Starts a server from `config`, keeping `data_dir` alive with it.
    pub async fn spawn_with(config: Config, data_dir: TempDir) -> Self {
        docpulse::telemetry::init();
        let application = Application::build(config)
            .await
            .expect("the application builds");
        let address = format!("http://{}", application.local_addr());
        let shutdown = application.shutdown_token();
        let server = tokio::spawn(application.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            shutdown,
            server,
            _data_dir: data_dir,
        }
    }

    /// `GET <address><path>`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the server answers")
    }

    /// Fires the shutdown token and waits for the server to finish, at most [`SHUTDOWN_LIMIT`].
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(SHUTDOWN_LIMIT, self.server)
            .await
            .expect("the server stops within the limit")
            .expect("the server task does not panic")
    }
}
