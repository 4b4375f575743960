//! docker-compose.yml and deploy/: parsed (no Docker engine here) and checked for consistency:
//! services and ports referenced by each other exist, mounted files exist, Prometheus scrapes
//! the watcher's default port, Grafana's data sources match the Postgres service, and every
//! dashboard query runs against a freshly migrated database and names only real metrics, and
//! the alerting rules Prometheus loads name only real metrics and cover every alert kind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// (host path, container path) of a service's bind mounts that start with `./`.
fn mounts(service: &Value) -> Vec<(PathBuf, String)> {
    service["volumes"]
        .as_sequence()
        .map(|v| v.iter().map(s).collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.starts_with("./"))
        .map(|m| {
            let mut parts = m.split(':');
            let host = root().join(parts.next().unwrap());
            (host, parts.next().unwrap().to_string())
        })
        .collect()
}

/// The host path mounted at `target` (or a parent of it) in `service`.
fn host_path(service: &Value, target: &str) -> PathBuf {
    mounts(service)
        .into_iter()
        .find_map(|(host, container)| {
            let rest = target.strip_prefix(&container)?.trim_start_matches('/');
            Some(if rest.is_empty() {
                host
            } else {
                host.join(rest)
            })
        })
        .unwrap_or_else(|| panic!("nothing mounted at {target}"))
}

/// Every metric the watcher exports (histograms by their base name).
const METRIC_NAMES: [&str; 9] = [
    shopstream::metrics::FILES,
    shopstream::metrics::ROWS,
    shopstream::metrics::INGEST_SECONDS,
    shopstream::metrics::UNMIRRORED_FILES,
    shopstream::metrics::ERRORS,
    shopstream::metrics::LAST_ERROR,
    shopstream::metrics::LOCK_TIMEOUTS,
    shopstream::metrics::LOCK_WAITING,
    shopstream::metrics::ALERTS_OPEN,
];

/// Asserts that a PromQL expression names at least one `shopstream_` metric, and only
/// exported ones.
fn assert_known_metrics(expr: &str) {
    let named: Vec<&str> = expr
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("shopstream_"))
        .collect();
    assert!(!named.is_empty(), "{expr}");
    for w in named {
        let base = w
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(METRIC_NAMES.contains(&base), "{expr} names unknown {w}");
    }
}

/// The rules files Prometheus loads: each rule's PromQL names real metrics; every alert kind,
/// ingest stalls and the Kafka backlog have a rule.
fn check_alerting_rules(prometheus: &Value, prom: &Value) {
    let files = prom["rule_files"].as_sequence().expect("rule_files");
    assert!(!files.is_empty());
    let mut exprs = Vec::new();
    for file in files {
        let rules = yaml(&host_path(prometheus, &s(file)));
        for group in rules["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                assert!(rule["alert"].is_string(), "{rule:?}");
                let expr = s(&rule["expr"]);
                if !expr.starts_with("up{") {
                    assert_known_metrics(&expr);
                }
                exprs.push(expr);
            }
        }
    }
    for kind in shopstream::load::alerts::KINDS {
        let needle = format!("{}{{kind=\"{kind}\"}}", shopstream::metrics::ALERTS_OPEN);
        assert!(
            exprs.iter().any(|e| e.contains(&needle)),
            "no rule for {kind}"
        );
    }
    for metric in [
        shopstream::metrics::UNMIRRORED_FILES,
        shopstream::metrics::ERRORS,
        shopstream::metrics::LOCK_WAITING,
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "no rule on {metric}"
        );
    }
}

fn published_container_ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|p| {
            p.iter()
                .map(|p| s(p).rsplit(':').next().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_prometheus_and_grafana_files_reference_each_other_consistently() {
    let compose = yaml(&root().join("docker-compose.yml"));
    let services = compose["services"].as_mapping().expect("services");
    let names: HashSet<String> = services.keys().map(s).collect();
    for needed in ["postgres", "kafka", "kafka-ui", "prometheus", "grafana"] {
        assert!(names.contains(needed), "service {needed} missing");
    }
    assert!(
        !names.iter().any(|n| n.contains("zookeeper")),
        "KRaft, no ZooKeeper"
    );
    let svc = |name: &str| &compose["services"][name];
    for (name, service) in services {
        if let Some(deps) = service["depends_on"].as_mapping() {
            for dep in deps.keys() {
                assert!(
                    names.contains(&s(dep)),
                    "{} depends on unknown {}",
                    s(name),
                    s(dep)
                );
            }
        }
        for (host, _) in mounts(service) {
            assert!(
                host.exists(),
                "{} mounts missing {}",
                s(name),
                host.display()
            );
        }
    }

    // Kafka in KRaft mode, and Kafka UI pointed at its internal listener.
    let kafka = &svc("kafka")["environment"];
    assert!(s(&kafka["KAFKA_PROCESS_ROLES"]).contains("controller"));
    let internal = s(&kafka["KAFKA_ADVERTISED_LISTENERS"])
        .split(',')
        .find_map(|l| l.strip_prefix("PLAINTEXT://").map(str::to_string))
        .expect("internal listener");
    assert_eq!(
        s(&svc("kafka-ui")["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]),
        internal
    );

    // Prometheus scrapes the watcher's default port on the host, through the mapped name.
    let prometheus = svc("prometheus");
    let config_arg = prometheus["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .find_map(|a| a.strip_prefix("--config.file=").map(str::to_string))
        .expect("--config.file");
    let prom = yaml(&host_path(prometheus, &config_arg));
    let targets: Vec<String> = prom["scrape_configs"][0]["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(s(&prom["scrape_configs"][0]["metrics_path"]), "/metrics");
    check_alerting_rules(prometheus, &prom);
    let default_port = shopstream::config::DEFAULT_HTTP_ADDR
        .rsplit(':')
        .next()
        .unwrap();
    assert_eq!(
        targets,
        vec![format!("host.docker.internal:{default_port}")]
    );
    let extra: Vec<String> = prometheus["extra_hosts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert!(extra.contains(&"host.docker.internal:host-gateway".to_string()));
    assert!(published_container_ports(prometheus).contains(&"9090".into()));

    // Grafana: data sources match the Postgres and Prometheus services.
    let grafana = svc("grafana");
    let sources = yaml(&host_path(
        grafana,
        "/etc/grafana/provisioning/datasources/datasources.yml",
    ));
    let pg_env = &svc("postgres")["environment"];
    let mut uids = HashSet::new();
    for ds in sources["datasources"].as_sequence().unwrap() {
        uids.insert(s(&ds["uid"]));
        match s(&ds["type"]).as_str() {
            "grafana-postgresql-datasource" | "postgres" => {
                assert_eq!(s(&ds["url"]), "postgres:5432");
                assert_eq!(s(&ds["user"]), s(&pg_env["POSTGRES_USER"]));
                assert_eq!(s(&ds["jsonData"]["database"]), s(&pg_env["POSTGRES_DB"]));
                assert_eq!(
                    s(&ds["secureJsonData"]["password"]),
                    s(&pg_env["POSTGRES_PASSWORD"])
                );
            }
            "prometheus" => assert_eq!(s(&ds["url"]), "http://prometheus:9090"),
            other => panic!("unexpected data source type {other}"),
        }
    }
    let providers = yaml(&host_path(
        grafana,
        "/etc/grafana/provisioning/dashboards/dashboards.yml",
    ));
    let dash_dir = host_path(grafana, &s(&providers["providers"][0]["options"]["path"]));
    let home = s(&grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]);
    assert!(host_path(grafana, &home).exists(), "home dashboard {home}");

    // The dashboard: every panel's data source is provisioned; its SQL runs on a migrated
    // database; its PromQL names only metrics the watcher exports.
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    watch_once(landing.path(), &db, None); // migrates
    let pg = db.client().await;
    let mut sql_panels = 0;
    let mut prom_panels = 0;
    for entry in std::fs::read_dir(&dash_dir).unwrap() {
        let path = entry.unwrap().path();
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(dash["uid"].is_string() && dash["title"].is_string());
        for panel in dash["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let uid = target["datasource"]["uid"].as_str().unwrap();
                assert!(
                    uids.contains(uid),
                    "panel {} uses unknown {uid}",
                    panel["title"]
                );
                if let Some(sql) = target["rawSql"].as_str() {
                    pg.query(sql, &[])
                        .await
                        .unwrap_or_else(|e| panic!("panel {}: {e}\n{sql}", panel["title"]));
                    sql_panels += 1;
                }
                if let Some(expr) = target["expr"].as_str() {
                    assert_known_metrics(expr);
                    prom_panels += 1;
                }
            }
        }
    }
    assert!(
        sql_panels >= 9 && prom_panels >= 3,
        "{sql_panels} {prom_panels}"
    );
    // The KPIs of the issue are all on the dashboard.
    let text = std::fs::read_to_string(dash_dir.join("shopstream.json")).unwrap();
    for kpi in [
        "views",
        "carts",
        "purchases",
        "revenue",
        "conversion_rate",
        "cart_abandonment_rate",
        "average_order_value",
        "active_users",
    ] {
        assert!(text.contains(kpi), "dashboard lacks {kpi}");
    }
    db.cleanup().await;
}

/// MinIO and its one-shot bucket maker: the bucket made, the credentials and the port are the
/// ones the compose file's header tells a watcher to use.
#[test]
fn compose_minio_makes_the_landing_bucket_the_header_names() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let compose: Value = serde_yaml::from_str(&text).unwrap();
    let minio = &compose["services"]["minio"];
    let setup = &compose["services"]["minio-setup"];
    assert!(
        published_container_ports(minio).contains(&"9000".to_string()),
        "S3 port published"
    );
    assert!(text.contains("AWS_ENDPOINT_URL=http://127.0.0.1:9000"));
    let user = s(&minio["environment"]["MINIO_ROOT_USER"]);
    let password = s(&minio["environment"]["MINIO_ROOT_PASSWORD"]);
    assert!(text.contains(&format!(
        "AWS_ACCESS_KEY_ID={user} AWS_SECRET_ACCESS_KEY={password}"
    )));
    assert!(setup["depends_on"]["minio"].is_mapping(), "waits for MinIO");
    let script = setup["entrypoint"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        script.contains(&format!("http://minio:9000 {user} {password}")),
        "{script}"
    );
    assert!(script.contains("mc mb --ignore-existing local/shopstream-landing"));
    assert!(text.contains("--landing-dir s3://shopstream-landing/"));
}
