//! The `docpulse` binary as a user runs it: arguments, startup errors, signals.

use std::process::Command;

/// The server binary, as a user would start it.
fn docpulse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_docpulse"))
}

/// Runs `command`, checks that the start was refused, and returns what it printed on stderr.
#[track_caller]
fn refused_start(command: &mut Command) -> String {
    let output = command.output().expect("the binary runs");
    assert!(!output.status.success(), "the start is refused");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_the_configuration_variables() {
    let output = docpulse().arg("--help").output().expect("the binary runs");

    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8 help");
    for name in [
        "JWT_SECRET",
        "HEARTBEAT_SECS",
        "COALESCE_MS",
        "DATA_DIR",
        "DATABASE_URL",
        "REDIS_URL",
    ] {
        assert!(text.contains(name), "--help mentions {name}");
    }
}

#[test]
fn an_unknown_argument_is_refused_with_a_pointer_to_help() {
    let errors = refused_start(docpulse().args(["--port", "8080"]));

    assert!(
        errors.contains("unknown argument \"--port\""),
        "stderr: {errors}"
    );
    assert!(errors.contains("docpulse --help"), "stderr: {errors}");
}

#[test]
fn a_bad_value_stops_the_start_with_an_error_naming_the_variable() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let errors = refused_start(
        docpulse()
            .env("HEARTBEAT_SECS", "often")
            .env("DATA_DIR", data_dir.path())
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0"),
    );

    assert!(
        errors.contains("HEARTBEAT_SECS must be a whole number"),
        "stderr: {errors}"
    );
}

#[test]
fn sigterm_stops_a_running_server_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut server = docpulse()
        .env("DATA_DIR", data_dir.path())
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut log = BufReader::new(server.stderr.take().expect("piped stderr")).lines();
    let listening = log
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on"));
    assert!(
        listening.is_some(),
        "the server logs its address once it listens"
    );

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    let pid = server.id().to_string();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(server.wait()));
    let Ok(exit) = receiver.recv_timeout(Duration::from_secs(5)) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the server did not stop within 5 s of SIGTERM");
    };
    let exit = exit.expect("the child can be waited on");
    assert!(
        exit.success(),
        "a signalled shutdown exits with status 0, got {exit}"
    );
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line.contains("received SIGTERM")),
        "the server says why it stops: {rest:?}"
    );
}

/// `docpulse admin <arguments>` on the database in `data_dir`, with `stdin` as its input.
fn admin(data_dir: &std::path::Path, arguments: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;

    let mut child = docpulse()
        .arg("admin")
        .args(arguments)
        .env("DATA_DIR", data_dir)
        .env_remove("DOCPULSE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("the input is written");
    child.wait_with_output().expect("the binary ends")
}

#[track_caller]
fn check_admin(output: &std::process::Output, success: bool, expected_text: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.success(), success, "output: {text}");
    assert!(text.contains(expected_text), "output: {text}");
}

#[tokio::test]
async fn admin_commands_create_a_project_and_a_user_who_can_then_log_in() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let path = data_dir.path();

    check_admin(
        &admin(path, &["create-project", "proj_x", "Project X"], ""),
        true,
        "created project proj_x (Project X)",
    );
    check_admin(
        &admin(path, &["create-project", "proj_x", "Again"], ""),
        false,
        "a project with the id proj_x exists already",
    );
    check_admin(
        &admin(path, &["create-project", "bad id", "Spaces"], ""),
        false,
        "\"bad id\" is not a valid project id",
    );
    check_admin(
        &admin(
            path,
            &["create-user", "eve@example.com", "proj_nope"],
            "pw\n",
        ),
        false,
        "there is no project proj_nope",
    );
    check_admin(
        &admin(path, &["create-user", "eve@example.com", "proj_x"], ""),
        false,
        "the password is empty",
    );
    check_admin(
        &admin(
            path,
            &["create-user", "eve@example.com", "proj_x"],
            "s3cret\n",
        ),
        true,
        "created user eve@example.com",
    );
    check_admin(&admin(path, &["frobnicate"], ""), false, "Usage:");

    let secret = docpulse::config::Secret::generate().expect("randomness");
    let config = crate::helpers::test_config(path, &[("JWT_SECRET", secret.expose())]);
    let app = crate::helpers::TestApp::spawn_with(config, data_dir).await;
    let response = app.log_in("eve@example.com", "s3cret").await;
    assert_eq!(response.status(), 200);
    let session: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(
        session["projects"],
        serde_json::json!([{ "id": "proj_x", "name": "Project X" }])
    );
}
