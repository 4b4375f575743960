use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn spawn_watcher(landing: &Path, db_url: &str, kafka: Option<(&str, &str)>) -> Child {
    let mut cmd = Command::new(bin("watch"));
    cmd.env("HTTP_ADDR", "off");
    cmd.arg("--landing-dir")
        .arg(landing)
        .args(["--settle-ms", "100", "--rescan-secs", "1"])
        .args(["--kafka-timeout-ms", "2000"])
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kafka {
        Some((brokers, topic)) => cmd.env("KAFKA_BROKERS", brokers).env("KAFKA_TOPIC", topic),
        None => cmd.env("KAFKA_BROKERS", ""),
    };
    cmd.spawn().expect("start shopstream-watch")
}

/// The PostgreSQL cluster this test may stop and start, as "VERSION NAME" (scripts/test makes it).
fn outage_cluster() -> (String, String) {
    let spec = std::env::var("SHOPSTREAM_TEST_OUTAGE_CLUSTER")
        .expect("set SHOPSTREAM_TEST_OUTAGE_CLUSTER (scripts/test creates a cluster to stop)");
    let (version, name) = spec.split_once(' ').expect("VERSION NAME");
    (version.to_string(), name.to_string())
}

fn pg_ctlcluster(action: &str) {
    let (version, name) = outage_cluster();
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, &name, action])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_and_started_while_files_arrive_loses_nothing() {
    let admin = std::env::var("SHOPSTREAM_TEST_OUTAGE_URL")
        .expect("set SHOPSTREAM_TEST_OUTAGE_URL (scripts/test creates a cluster to stop)");
    let name = unique("outage");
    connect(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let landing = tempfile::tempdir().unwrap();
    let mut watcher = spawn_watcher(landing.path(), &url, None);
    generate(landing.path(), 3, 1_000, 61, &[]);
    let loaded = |n: i64| {
        let url = url.clone();
        move || {
            let url = url.clone();
            async move {
                match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    Ok((client, conn)) => {
                        tokio::spawn(conn);
                        let sql = "SELECT count(*) FROM streaming.ingest_files";
                        client
                            .query_one(sql, &[])
                            .await
                            .is_ok_and(|row| row.get::<_, i64>(0) >= n)
                    }
                    Err(_) => false,
                }
            }
        }
    };
    assert!(wait_for(Duration::from_secs(60), loaded(3)).await);

    pg_ctlcluster("stop");
    let stopped = Instant::now();
    generate(landing.path(), 3, 1_000, 62, &[]);
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        watcher.try_wait().unwrap().is_none(),
        "the watcher keeps running while Postgres is down"
    );
    assert_eq!(
        csv_count(landing.path()),
        3,
        "the new files wait in landing/"
    );
    let restarted = Instant::now();
    pg_ctlcluster("start");
    let caught_up = wait_for(Duration::from_secs(90), loaded(6)).await;
    let catch_up = restarted.elapsed();
    let out = terminate(watcher);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(caught_up, "caught up after the restart; log:\n{log}");
    assert!(out.status.success(), "exit 0 on SIGTERM; log:\n{log}");
    assert!(
        log.contains("Will retry the file"),
        "the outage was logged:\n{log}"
    );

    let pg = connect(&url).await;
    let rows = csv_rows(&landing.path().join("processed"));
    assert_eq!(rows.len(), 6_000);
    let ids = distinct(rows.iter().map(|(_, _, f)| f[0].as_str())).len() as i64;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        ids
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'"
        )
        .await,
        6
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    eprintln!(
        "postgres outage: down {:.1} s, caught up {:.1} s after the restart",
        (restarted - stopped).as_secs_f64(),
        catch_up.as_secs_f64()
    );
    drop(pg);
    let _ = connect(&admin)
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

/// A tansu broker of this test's own, on a fixed port so that it can come back at the same address.
struct Broker {
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(port: u16) -> Broker {
        let mut broker = Broker { port, child: None };
        broker.restart();
        broker
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let url = format!("tcp://{}", self.address());
        let child = Command::new(std::env::var("TANSU_BIN").unwrap_or_else(|_| "tansu".into()))
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.address()).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu listens on {}",
                self.address()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_down_postgres_goes_on_and_the_backlog_drains_when_it_returns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = Broker::start(port);
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("outage");
    let watcher = spawn_watcher(landing.path(), &db.url, Some((&broker.address(), &topic)));
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    generate(landing.path(), 1, 500, 71, &[]);
    let mirrored = wait_for(Duration::from_secs(60), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE mirrored_at IS NOT NULL",
        )
        .await
        .eq(&1)
    })
    .await;
    assert!(mirrored, "the first file reached Kafka");

    broker.stop();
    let stopped = Instant::now();
    let backlog_dir = tempfile::tempdir().unwrap();
    generate(backlog_dir.path(), 3, 500, 72, &[]);
    for entry in std::fs::read_dir(backlog_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, landing.path().join(path.file_name().unwrap())).unwrap();
    }
    let loaded_meanwhile = wait_for(Duration::from_secs(60), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'",
        )
        .await
            == 4
    })
    .await;
    assert!(
        loaded_meanwhile,
        "Postgres ingestion goes on while Kafka is down"
    );
    let backlog = count(
        &pg,
        "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' AND mirrored_at IS NULL",
    )
    .await;
    assert_eq!(backlog, 3, "the three new files wait in the mirror backlog");
    let loaded_in = stopped.elapsed();

    broker.restart();
    let restarted = Instant::now();
    let drained = wait_for(Duration::from_secs(120), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE mirrored_at IS NULL",
        )
        .await
            == 0
    })
    .await;
    let drain = restarted.elapsed();
    let out = terminate(watcher);
    assert!(
        drained,
        "the backlog drained; log:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The restarted in-memory broker starts empty: what it holds is exactly the drained backlog.
    let backlog_rows = csv_rows(backlog_dir.path());
    let ids = distinct(backlog_rows.iter().map(|(_, _, f)| f[0].as_str()));
    let (messages, _) = read_topic_from(
        &broker.address(),
        &topic,
        ids.len(),
        Duration::from_secs(60),
    );
    for id in &ids {
        assert!(
            messages.contains_key(*id),
            "event {id} reached Kafka after the outage"
        );
    }
    eprintln!(
        "kafka outage: 3 files loaded into Postgres {:.1} s into the outage; backlog drained {:.1} s after the broker returned",
        loaded_in.as_secs_f64(),
        drain.as_secs_f64()
    );
    db.cleanup().await;
}
