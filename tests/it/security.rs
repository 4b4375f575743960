//! Security: credentials never reach logs or errors, whatever the connection string looks like
//! and however the connection fails; SQL text never carries input (checked by reading src/).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const SECRET: &str = "Pw-s3cret-7f1c";

#[test]
fn a_failing_connection_never_shows_the_password() {
    let urls = [
        // Wrong password for a real server.
        format!("postgres://shopstream:{SECRET}@127.0.0.1:5432/shopstream"),
        // Nothing listening.
        format!("postgres://shopstream:{SECRET}@127.0.0.1:1/shopstream"),
        // Malformed.
        format!("postgres://shopstream:{SECRET}@127.0.0.1:notaport/shopstream"),
        // key=value form and a password query parameter.
        format!("host=127.0.0.1 port=1 user=shopstream password={SECRET} dbname=x"),
        format!("postgres://shopstream@127.0.0.1:1/x?password={SECRET}"),
    ];
    let landing = tempfile::tempdir().unwrap();
    let children: Vec<_> = urls
        .iter()
        .map(|url| {
            Command::new(bin("watch"))
                .env("HTTP_ADDR", "off")
                .args(["--once", "--settle-ms", "0"])
                .arg("--landing-dir")
                .arg(landing.path())
                .env("DATABASE_URL", url)
                .env("KAFKA_BROKERS", "")
                .env("RUST_LOG", "debug")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // The watcher retries an unreachable database forever; give it a few rounds of retries.
    std::thread::sleep(Duration::from_secs(3));
    for (url, mut child) in urls.iter().zip(children) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("Cannot reach Postgres") || text.contains("Connecting"),
            "the watcher said nothing for {url}: {text}"
        );
        assert!(
            !text.contains(SECRET),
            "the password leaked for {url}:\n{text}"
        );
    }
}

/// Every SQL statement of the library is a constant or a parameterised query: no `format!`
/// builds SQL from values (the only dynamic SQL in the repository is the test fixture's own
/// database names, made from random UUIDs).
#[test]
fn sql_is_never_built_from_input() {
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let upper = line.to_uppercase();
                let sql = [
                    "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "COPY ", "CREATE ", "DROP ",
                ]
                .iter()
                .any(|k| upper.contains(k));
                let dynamic = line.contains("format!(")
                    || line.contains("push_str(")
                    || line.contains(" + &");
                if sql && dynamic {
                    offenders.push(format!("{}:{}: {line}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL built with format!:\n{}",
        offenders.join("\n")
    );
}
