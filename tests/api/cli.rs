use std::process::Command;

#[test]
fn help_lists_the_configuration_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_docpulse"))
        .arg("--help")
        .output()
        .expect("the binary runs");

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
fn a_bad_value_stops_the_start_with_an_error_naming_the_variable() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let output = Command::new(env!("CARGO_BIN_EXE_docpulse"))
        .env("HEARTBEAT_SECS", "often")
        .env("DATA_DIR", data_dir.path())
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .expect("the binary runs");

    assert!(!output.status.success());
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        errors.contains("HEARTBEAT_SECS must be a whole number"),
        "stderr: {errors}"
    );
}
