//! Test fixtures: a fresh database per test, a random topic, a temporary landing directory,
//! the two binaries, and `wait_for` polling instead of sleeps.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use tokio_postgres::{Client, NoTls};

pub fn admin_url() -> String {
    std::env::var("SHOPSTREAM_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("set SHOPSTREAM_TEST_DATABASE_URL (scripts/test starts PostgreSQL and sets it)")
}

pub fn kafka_brokers() -> String {
    std::env::var("SHOPSTREAM_TEST_KAFKA")
        .expect("set SHOPSTREAM_TEST_KAFKA (scripts/test starts a tansu broker and sets it)")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A database of its own for one test; dropped by `cleanup` when the test passed.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = connect(&admin_url()).await;
        let name = unique("shopstream_test");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let base = admin_url();
        let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
        TestDb {
            url: format!("{prefix}/{name}"),
            name,
        }
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    pub async fn cleanup(self) {
        let admin = connect(&admin_url()).await;
        let _ = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL ({e}); run the tests with scripts/test")
        });
    tokio::spawn(connection);
    client
}

pub async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Waits until a starting watcher has applied the migrations.
pub async fn wait_for_schema(client: &Client) {
    let ready = wait_for(Duration::from_secs(60), || async {
        client
            .query("SELECT 1 FROM streaming.ingest_files LIMIT 0", &[])
            .await
            .is_ok()
    })
    .await;
    assert!(ready, "the watcher applied its migrations");
}

/// The rows of `sql`, its first `width` columns read as text, sorted (for exact comparisons
/// with the rows a test expects).
pub async fn rows_as_text(client: &Client, sql: &str, width: usize) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| (0..width).map(|i| r.get::<_, String>(i)).collect())
        .collect();
    rows.sort();
    rows
}

/// Rows in `event_stats_hourly` that differ from the recompute over `events`, both ways.
pub async fn stats_mismatches(client: &Client) -> i64 {
    count(
        client,
        "SELECT count(*) FROM (
            (SELECT hour, event_type, product_category, event_count, quantity, revenue
               FROM streaming.event_stats_hourly
             EXCEPT SELECT * FROM streaming.event_stats_hourly_recompute)
            UNION ALL
            (SELECT * FROM streaming.event_stats_hourly_recompute
             EXCEPT SELECT hour, event_type, product_category, event_count, quantity, revenue
               FROM streaming.event_stats_hourly)) d",
    )
    .await
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "gen" => PathBuf::from(env!("CARGO_BIN_EXE_shopstream-gen")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_shopstream-watch")),
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run binary");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn generate(dir: &Path, files: usize, rows: usize, seed: u64, extra: &[&str]) {
    run_ok(
        Command::new(bin("gen"))
            .arg("--out")
            .arg(dir)
            .args([
                "--files",
                &files.to_string(),
                "--rows-per-file",
                &rows.to_string(),
            ])
            .args(["--seed", &seed.to_string()])
            .args(extra),
    );
}

/// `shopstream-watch --once` on `landing` against `db`, mirroring to `topic` when given.
pub fn watch_once(landing: &Path, db: &TestDb, topic: Option<&str>) -> Output {
    watch_once_with(landing, db, topic, &[])
}

/// As `watch_once`, with extra command-line flags.
pub fn watch_once_with(landing: &Path, db: &TestDb, topic: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("watch"));
    cmd.env("HTTP_ADDR", "off");
    cmd.args(args);
    cmd.arg("--once")
        .arg("--landing-dir")
        .arg(landing)
        .args(["--settle-ms", "0"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    match topic {
        Some(topic) => cmd
            .env("KAFKA_BROKERS", kafka_brokers())
            .env("KAFKA_TOPIC", topic),
        None => cmd.env("KAFKA_BROKERS", ""),
    };
    run_ok(&mut cmd)
}

/// The data rows of every CSV file in `dir`, as (file name, line number, fields).
pub fn csv_rows(dir: &Path) -> Vec<(String, usize, Vec<String>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate().skip(1) {
            rows.push((
                name.clone(),
                i + 1,
                line.split(',').map(str::to_string).collect(),
            ));
        }
    }
    rows
}

/// Reads every message of `topic` until `expected` distinct event ids arrived or `timeout`;
/// returns event_id → (key, payload JSON) and the number of messages read.
pub fn read_topic(
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> (HashMap<String, (String, serde_json::Value)>, usize) {
    read_topic_from(&kafka_brokers(), topic, expected, timeout)
}

/// As `read_topic`, from the broker at `brokers`.
pub fn read_topic_from(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> (HashMap<String, (String, serde_json::Value)>, usize) {
    read_topic_by(
        brokers,
        topic,
        |payload| payload["event_id"].as_str().unwrap().to_string(),
        expected,
        timeout,
    )
}

/// Reads every message of `topic` until `expected` distinct ids (`id` of the payload) arrived or
/// `timeout`; returns id → (key, payload JSON) and the number of messages read.
pub fn read_topic_by(
    brokers: &str,
    topic: &str,
    id: impl Fn(&serde_json::Value) -> String,
    expected: usize,
    timeout: Duration,
) -> (HashMap<String, (String, serde_json::Value)>, usize) {
    let consumer = subscribed(brokers, topic);
    let mut seen = HashMap::new();
    let mut messages = 0;
    let deadline = Instant::now() + timeout;
    while seen.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("kafka message");
        messages += 1;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec()).unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).unwrap();
        seen.insert(id(&payload), (key, payload));
    }
    (seen, messages)
}

/// A consumer of its own group reading `topic` from its start.
fn subscribed(brokers: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("it"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// As `read_topic`, with each payload as the exact text the broker holds (decimals keep their
/// digits, fields their order).
pub fn read_topic_raw(
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> HashMap<String, (String, String)> {
    let consumer = subscribed(&kafka_brokers(), topic);
    let mut seen = HashMap::new();
    let deadline = Instant::now() + timeout;
    while seen.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("kafka message");
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec()).unwrap();
        let payload = String::from_utf8(message.payload().unwrap_or_default().to_vec()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let id = parsed["event_id"].as_str().unwrap().to_string();
        seen.insert(id, (key, payload));
    }
    seen
}

/// Polls `condition` every 50 ms until true or `timeout`; returns whether it became true.
pub async fn wait_for<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> HashSet<&'a str> {
    values.collect()
}

/// CSV files directly in `dir`.
pub fn csv_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "csv")
        })
        .count()
}

/// Sends SIGTERM and waits for the process to exit.
pub fn terminate(child: Child) -> std::process::Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// A loopback address nothing listens on (the port of a just-closed listener).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// GET over HTTP/1.0; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_get_token(addr, path, None)
}

/// GET over HTTP/1.0 with `Authorization: Bearer <token>` when a token is given; returns
/// (status, body).
pub fn http_get_token(
    addr: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A long-running watcher on `landing` with its HTTP server on `addr` (Kafka off), extra flags
/// and environment given; stop it with [`terminate`].
pub fn serve_watcher(
    landing: &Path,
    db: &TestDb,
    addr: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    let mut cmd = Command::new(bin("watch"));
    cmd.arg("--landing-dir")
        .arg(landing)
        .args(["--settle-ms", "0", "--http-addr", addr])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", "")
        .env("RUST_LOG", "warn")
        .env_remove("HTTP_TOKEN")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("start shopstream-watch")
}
