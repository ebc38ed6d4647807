//! `ferry-import`: reads the topics of a Kafka cluster and writes `ferry_topic` HCL, `import`
//! blocks (OpenTofu, Terraform ≥ 1.5) and a `terraform import` script (older Terraform), so a
//! cluster of hand-made topics comes under Terraform with a plan that shows no changes.
//! docs/guides/import.md is the user's guide.

mod hcl;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ferry_kafka::{Admin, ConnectionConfig, SaslConfig, SaslMechanism, Secret, TlsConfig};
use regex::Regex;

const HELP: &str = "\
ferry-import — writes ferry_topic resources and their imports for the topics of a Kafka cluster

USAGE:
  ferry-import --bootstrap-servers HOST:PORT[,HOST:PORT...] [options]

OUTPUT (in --out DIR, default the current directory; existing files are kept unless --force):
  ferry_topics.tf    one ferry_topic per topic (partitions, replication_factor, and config with
                     only the topic's own overrides), or with --for-each one resource over a map
  ferry_imports.tf   import blocks, for OpenTofu and Terraform 1.5 or later (--no-import-blocks:
                     not written; Terraform before 1.5 cannot read a configuration containing it)
  ferry_import.sh    `terraform import` for every topic, for Terraform before 1.5 (set TERRAFORM
                     to pick the binary)

OPTIONS:
  --out DIR                 where to write (created if missing)
  --force                   overwrite existing output files
  --for-each [NAME]         one `ferry_topic.NAME` (default NAME: topics) with for_each
  --no-import-blocks        do not write ferry_imports.tf
  --include REGEX           only topics matching (repeatable: any of them)
  --exclude REGEX           not topics matching (repeatable; wins over --include)
  --include-internal        also internal topics (names starting with __), skipped by default
CONNECTION:
  --bootstrap-servers LIST  or FERRY_KAFKA_BOOTSTRAP_SERVERS
  --timeout DURATION        per request, e.g. 30s (default), 2m
  --tls                     connect with TLS (implied by the three options below)
  --ca-cert FILE --client-cert FILE --client-key FILE   PEM files
  --insecure-skip-verify    skip server certificate verification (test clusters only)
  --sasl-mechanism M        PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (AWS credentials
                            from the standard chain; no user name or password)
  --sasl-username USER      or FERRY_KAFKA_SASL_USERNAME
  The SASL password is never an argument: FERRY_KAFKA_SASL_PASSWORD, or --sasl-password-file FILE.

Exit codes: 0 written, 1 failure (Kafka, files), 2 usage.
";

#[derive(Debug, Default)]
struct Args {
    out: PathBuf,
    force: bool,
    for_each: Option<String>,
    import_blocks: bool,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    include_internal: bool,
    servers: Option<String>,
    timeout: Option<Duration>,
    tls: bool,
    ca_cert: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    insecure: bool,
    mechanism: Option<SaslMechanism>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return None,
    };
    (d > Duration::ZERO).then_some(d)
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        out: PathBuf::from("."),
        import_blocks: true,
        ..Args::default()
    };
    let mut it = args.into_iter().peekable();
    while let Some(flag) = it.next() {
        let mut value = |what: &str| it.next().ok_or_else(|| format!("{flag} needs {what}"));
        let regex = |s: String| Regex::new(&s).map_err(|e| format!("invalid regex {s:?}: {e}"));
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--out" => a.out = value("a directory")?.into(),
            "--force" => a.force = true,
            "--for-each" => {
                let name = match it.peek() {
                    Some(n) if !n.starts_with("--") => it.next().unwrap_or_default(),
                    _ => "topics".to_string(),
                };
                if hcl::sanitise(&name) != name {
                    return Err(format!(
                        "--for-each {name:?} is not a Terraform resource name"
                    ));
                }
                a.for_each = Some(name);
            }
            "--no-import-blocks" => a.import_blocks = false,
            "--include" => a.include.push(regex(value("a regex")?)?),
            "--exclude" => a.exclude.push(regex(value("a regex")?)?),
            "--include-internal" => a.include_internal = true,
            "--bootstrap-servers" => a.servers = Some(value("host:port,...")?),
            "--timeout" => {
                let v = value("a duration")?;
                a.timeout = Some(parse_duration(&v).ok_or(format!(
                    "--timeout {v:?} is not a duration such as 30s, 2m or 500ms"
                ))?);
            }
            "--tls" => a.tls = true,
            "--ca-cert" => a.ca_cert = Some(value("a PEM file")?.into()),
            "--client-cert" => a.client_cert = Some(value("a PEM file")?.into()),
            "--client-key" => a.client_key = Some(value("a PEM file")?.into()),
            "--insecure-skip-verify" => a.insecure = true,
            "--sasl-mechanism" => {
                let v = value("a mechanism")?;
                a.mechanism = Some(SaslMechanism::parse(&v).ok_or(format!(
                    "--sasl-mechanism {v:?}: use one of {}",
                    SaslMechanism::NAMES.join(", ")
                ))?);
            }
            "--sasl-username" => a.username = Some(value("a user name")?),
            "--sasl-password-file" => a.password_file = Some(value("a file")?.into()),
            f if f.starts_with("--sasl-password") => {
                return Err(
                    "the SASL password is never taken from the command line (it would show in \
                     the process list and shell history): set FERRY_KAFKA_SASL_PASSWORD or use \
                     --sasl-password-file FILE"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn connection(a: &Args) -> Result<ConnectionConfig, String> {
    let servers = a
        .servers
        .clone()
        .or_else(|| env("FERRY_KAFKA_BOOTSTRAP_SERVERS"))
        .ok_or(
            "no bootstrap servers: pass --bootstrap-servers or set FERRY_KAFKA_BOOTSTRAP_SERVERS",
        )?;
    let bootstrap_servers: Vec<String> = servers.split(',').map(|s| s.trim().to_string()).collect();
    if bootstrap_servers
        .iter()
        .any(|s| s.is_empty() || !s.contains(':') || s.contains("://"))
    {
        return Err(format!(
            "bootstrap servers {servers:?}: write them as host:port,host:port"
        ));
    }
    let tls = (a.tls
        || a.ca_cert.is_some()
        || a.client_cert.is_some()
        || a.client_key.is_some()
        || a.insecure)
        .then(|| -> Result<TlsConfig, String> {
            Ok(TlsConfig {
                ca_pem: a.ca_cert.as_deref().map(read_file).transpose()?,
                client_cert_pem: a.client_cert.as_deref().map(read_file).transpose()?,
                client_key_pem: a
                    .client_key
                    .as_deref()
                    .map(read_file)
                    .transpose()?
                    .map(Secret::new),
                insecure_skip_verify: a.insecure,
            })
        })
        .transpose()?;
    let sasl = match a.mechanism {
        None => None,
        // MSK IAM signs in with AWS credentials from the standard chain: no user or password.
        Some(SaslMechanism::AwsMskIam) => Some(SaslConfig {
            mechanism: SaslMechanism::AwsMskIam,
            username: String::new(),
            password: Secret::new(""),
        }),
        Some(mechanism) => {
            let username = a
                .username
                .clone()
                .or_else(|| env("FERRY_KAFKA_SASL_USERNAME"))
                .ok_or("SASL needs --sasl-username or FERRY_KAFKA_SASL_USERNAME")?;
            let password = match &a.password_file {
                Some(p) => read_file(p)?.trim_end_matches(['\n', '\r']).to_string(),
                None => env("FERRY_KAFKA_SASL_PASSWORD")
                    .ok_or("SASL needs FERRY_KAFKA_SASL_PASSWORD or --sasl-password-file FILE")?,
            };
            Some(SaslConfig {
                mechanism,
                username,
                password: Secret::new(password),
            })
        }
    };
    Ok(ConnectionConfig {
        bootstrap_servers,
        tls,
        sasl,
        timeout: a.timeout.unwrap_or(ConnectionConfig::DEFAULT_TIMEOUT),
    })
}

/// Whether a topic is selected by the filters (internal topics are handled by the listing).
fn selected(a: &Args, name: &str) -> bool {
    (a.include.is_empty() || a.include.iter().any(|r| r.is_match(name)))
        && !a.exclude.iter().any(|r| r.is_match(name))
}

async fn read_topics(admin: &Admin, a: &Args) -> Result<Vec<hcl::Topic>, String> {
    let names: Vec<String> = admin
        .topic_names(a.include_internal)
        .await
        .map_err(|e| format!("listing topics: {e}"))?
        .into_iter()
        .filter(|n| selected(a, n))
        .collect();
    let mut layouts = admin
        .topic_layouts(&names)
        .await
        .map_err(|e| format!("describing topics: {e}"))?;
    let mut configs = admin
        .topics_config_overrides(&names)
        .await
        .map_err(|e| format!("describing topic configs: {e}"))?;
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let layout = match layouts.remove(&name) {
            Some(Ok(Some(l))) => l,
            // Deleted between the listing and the description.
            Some(Ok(None)) | None => continue,
            Some(Err(e)) => return Err(format!("describing topic {name:?}: {e}")),
        };
        let config = match configs.remove(&name) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(format!("describing configs of topic {name:?}: {e}")),
            None => return Err(format!("no configs returned for topic {name:?}")),
        };
        let d = layout.description();
        topics.push(hcl::Topic {
            name,
            partitions: d.partitions as usize,
            replication_factor: d.replication_factor as usize,
            config,
        });
    }
    Ok(topics)
}

fn write_outputs(a: &Args, out: &hcl::Output) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(&a.out)
        .map_err(|e| format!("cannot create {}: {e}", a.out.display()))?;
    let mut files = vec![
        ("ferry_topics.tf", &out.topics_tf),
        ("ferry_import.sh", &out.import_sh),
    ];
    if a.import_blocks {
        files.push(("ferry_imports.tf", &out.imports_tf));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(f, _)| a.out.join(f)).collect();
    if !a.force
        && let Some(existing) = paths.iter().find(|p| p.exists())
    {
        return Err(format!(
            "{} exists; pass --force to overwrite it",
            existing.display()
        ));
    }
    for ((_, text), path) in files.iter().zip(&paths) {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = a.out.join("ferry_import.sh");
        let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755));
    }
    Ok(paths)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferry-import: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let config = match connection(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferry-import: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let admin = Admin::connect(&config)
            .await
            .map_err(|e| format!("connecting to {}: {e}", config.bootstrap()))?;
        let topics = read_topics(&admin, &args).await?;
        let layout = hcl::Layout {
            for_each: args.for_each.clone(),
        };
        let written = write_outputs(&args, &hcl::render(&topics, &layout))?;
        Ok::<_, String>((topics.len(), written))
    }
    .await;
    match result {
        Ok((count, written)) => {
            eprintln!("ferry-import: {count} topics");
            for p in written {
                eprintln!("  wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferry-import: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn passwords_are_refused_on_the_command_line() {
        for flag in [&["--sasl-password", "x"][..], &["--sasl-password=x"]] {
            let e = args(flag).unwrap_err();
            assert!(e.contains("FERRY_KAFKA_SASL_PASSWORD"), "{e}");
        }
    }

    #[test]
    fn filters_and_for_each() {
        let a = args(&[
            "--include",
            "^a",
            "--include",
            "^b",
            "--exclude",
            "x$",
            "--for-each",
        ])
        .unwrap();
        assert!(selected(&a, "a1") && selected(&a, "b1"));
        assert!(!selected(&a, "c1") && !selected(&a, "ax"));
        assert_eq!(a.for_each.as_deref(), Some("topics"));
        let a = args(&["--for-each", "all", "--no-import-blocks"]).unwrap();
        assert_eq!(a.for_each.as_deref(), Some("all"));
        assert!(!a.import_blocks);
        assert!(args(&["--for-each", "a.b"]).is_err());
        assert!(
            args(&["--include", "("])
                .unwrap_err()
                .contains("invalid regex")
        );
        assert!(args(&["--bogus"]).is_err());
    }

    #[test]
    fn durations_and_servers() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("10"), None);
        let a = args(&["--bootstrap-servers", "http://b:9092"]).unwrap();
        assert!(connection(&a).is_err());
        let a = args(&[
            "--bootstrap-servers",
            "b-1:9092, b-2:9092",
            "--timeout",
            "5s",
        ])
        .unwrap();
        let c = connection(&a).unwrap();
        assert_eq!(c.bootstrap_servers, ["b-1:9092", "b-2:9092"]);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.tls.is_none() && c.sasl.is_none());
    }

    #[test]
    fn msk_iam_asks_for_no_user_or_password() {
        let a = args(&[
            "--bootstrap-servers",
            "b-1.example:9098",
            "--tls",
            "--sasl-mechanism",
            "AWS_MSK_IAM",
        ])
        .unwrap();
        let sasl = connection(&a).unwrap().sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::AwsMskIam);
        assert!(sasl.username.is_empty());
    }
}
