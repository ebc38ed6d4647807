//! Logs as hclog JSON lines on stderr. go-plugin parses these and re-emits them at their own
//! level, so `TF_LOG=DEBUG terraform apply` shows ferry's lines where they belong.

use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::Targets};

/// The provider's name, prefixed to every line's `@module`.
static MODULE: OnceLock<&'static str> = OnceLock::new();

/// The level from TF_LOG_PROVIDER_<NAME>, TF_LOG_PROVIDER or TF_LOG (first set wins); INFO
/// otherwise. The client filters again, so this only saves work.
pub fn level_from_env(provider_name: &str) -> LevelFilter {
    let own = format!("TF_LOG_PROVIDER_{}", provider_name.to_ascii_uppercase());
    [own.as_str(), "TF_LOG_PROVIDER", "TF_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .and_then(|v| match v.to_ascii_lowercase().as_str() {
            "trace" | "json" => Some(LevelFilter::TRACE),
            "debug" => Some(LevelFilter::DEBUG),
            "info" => Some(LevelFilter::INFO),
            "warn" => Some(LevelFilter::WARN),
            "error" => Some(LevelFilter::ERROR),
            "off" => Some(LevelFilter::OFF),
            _ => None,
        })
        .unwrap_or(LevelFilter::INFO)
}

pub fn init(provider_name: &'static str) {
    MODULE.get_or_init(|| provider_name);
    let filter = Targets::new()
        .with_default(level_from_env(provider_name))
        // Dependencies' chatter stays out.
        .with_target("h2", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("rustls", LevelFilter::WARN)
        .with_target("tonic", LevelFilter::WARN)
        .with_target("tower", LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(HclogLayer.with_filter(filter))
        .init();
}

/// Formats one event as an hclog JSON object.
pub struct HclogLayer;

struct Fields(Map<String, Json>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Json::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Json::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Json::from(value));
    }
}

pub fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// hclog's timestamp shape, which go-plugin parses strictly: RFC 3339 in UTC with exactly six
/// fractional digits (nine make it treat the whole line as plain text).
fn timestamp() -> String {
    const HCLOG: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(HCLOG)
        .unwrap_or_default()
}

pub fn format_event(level: &Level, target: &str, mut fields: Map<String, Json>) -> String {
    let message = match fields.remove("message") {
        Some(Json::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut line = Map::new();
    line.insert("@level".into(), Json::from(hclog_level(level)));
    line.insert("@message".into(), Json::from(message));
    line.insert(
        "@module".into(),
        Json::from(format!(
            "{}.{}",
            MODULE.get().copied().unwrap_or("provider"),
            target.replace("::", ".")
        )),
    );
    line.insert("@timestamp".into(), Json::from(timestamp()));
    line.extend(fields);
    Json::Object(line).to_string()
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let line = format_event(meta.level(), meta.target(), fields.0);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_becomes_hclog_json() {
        let mut fields = Map::new();
        fields.insert("message".into(), Json::from("creating topic"));
        fields.insert("topic".into(), Json::from("orders"));
        let line = format_event(&Level::DEBUG, "terraform_provider_ferry::grpc", fields);
        let parsed: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["@level"], "debug");
        assert_eq!(parsed["@message"], "creating topic");
        assert_eq!(parsed["topic"], "orders");
        assert!(
            parsed["@module"]
                .as_str()
                .unwrap()
                .ends_with(".terraform_provider_ferry.grpc")
        );
        let ts = parsed["@timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
    }
}
