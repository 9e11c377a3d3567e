//! Building and stopping the application: data folder, development secret, shutdown.

use docpulse::startup::Application;

use crate::helpers::{TestApp, free_port, test_config};

#[tokio::test]
async fn shutdown_stops_the_server_promptly() {
    let app = TestApp::spawn().await;
    let address = app.address.clone();

    // `stop` fails the test when the server takes longer than `SHUTDOWN_LIMIT`.
    app.stop().await.expect("clean stop");

    let refused = reqwest::get(format!("{address}/healthz")).await;
    assert!(refused.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn a_development_secret_is_generated_once_and_kept_across_restarts() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let secret_file = data_dir.path().join("jwt-secret.dev");

    let first = Application::build(test_config(data_dir.path(), &[]))
        .await
        .expect("a development start needs no JWT_SECRET");
    drop(first);
    let generated = std::fs::read_to_string(&secret_file).expect("the secret was kept");
    assert_eq!(generated.len(), 64, "32 random bytes, hex-encoded");

    let second = Application::build(test_config(data_dir.path(), &[]))
        .await
        .expect("the second start reuses the secret");
    drop(second);
    assert_eq!(
        std::fs::read_to_string(&secret_file).expect("still there"),
        generated
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the secret");
    }
}

#[tokio::test]
async fn the_database_file_is_created_under_the_data_folder() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let nested = data_dir.path().join("nested/state");

    let application = Application::build(test_config(&nested, &[]))
        .await
        .expect("the data folder is created");
    drop(application);

    assert!(nested.join("docpulse.db").is_file());
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_naming_redis_url() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let closed_port = free_port();
    let url = format!("redis://127.0.0.1:{closed_port}");
    let config = test_config(data_dir.path(), &[("REDIS_URL", &url)]);

    let error = Application::build(config)
        .await
        .err()
        .expect("the start is refused");

    assert!(error.to_string().contains("REDIS_URL"), "{error}");
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_at_once_naming_database_url_and_why() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let closed_port = free_port();
    let url = format!("postgres://docpulse:secret@127.0.0.1:{closed_port}/docpulse");
    let config = test_config(data_dir.path(), &[("DATABASE_URL", &url)]);

    let error = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Application::build(config),
    )
    .await
    .expect("the start gives up within seconds, not a pool timeout")
    .err()
    .expect("the start is refused");

    let message = format!("{error:#}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password is not shown: {message}"
    );
}

#[tokio::test]
async fn a_truncated_development_secret_is_refused_rather_than_used() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(data_dir.path().join("jwt-secret.dev"), "short").expect("write");

    let error = Application::build(test_config(data_dir.path(), &[]))
        .await
        .err()
        .expect("a weak secret stops the start");

    assert!(error.to_string().contains("jwt-secret.dev"), "{error}");
}
