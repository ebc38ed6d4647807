//! Connection-level events (what librdkafka queues when a broker refuses us) and a probe that
//! asks OpenSSL why a broker's certificate was refused, in the idiom of the parent module.
//!
//! librdkafka reports every refused broker certificate as "certificate verify failed", whatever
//! the cause. OpenSSL knows the cause (expired, another host name, an unknown CA); librdkafka
//! only passes it on to a certificate-verification callback, which rust-rdkafka's clients do not
//! set. [`certificate_verdict`] makes one more, short-lived client with such a callback and
//! reads the verdict it logs.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::ptr;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::bindings as rd;
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaType;

use super::{Handle, Native, c_string};

/// One error event or error-level log line from a client's main queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionEvent {
    /// The error code of an error event; `None` for a log line.
    pub code: Option<RDKafkaErrorCode>,
    pub text: String,
}

/// Drains the client's main queue (errors and, with `log.queue`, logs, which rust-rdkafka's
/// admin client never polls) and returns its error events and error-level log lines, oldest
/// first.
pub(crate) fn drain_events(rk: Handle<'_>) -> Vec<ConnectionEvent> {
    let mut out = Vec::new();
    // SAFETY: `rk` is live; the queue reference we get is ours to release.
    let Some(queue) = (unsafe { Native::own(rd::rd_kafka_queue_get_main(rk.as_ptr())) }) else {
        return out;
    };
    // SAFETY: `queue` is live; each polled event is ours.
    while let Some(event) = unsafe { Native::own(rd::rd_kafka_queue_poll(queue.as_ptr(), 0)) } {
        // SAFETY: `event` is live; the texts we copy live as long as it does.
        unsafe {
            match rd::rd_kafka_event_type(event.as_ptr()) {
                rd::RD_KAFKA_EVENT_LOG => {
                    let (mut fac, mut text, mut level) = (ptr::null(), ptr::null(), 0);
                    if rd::rd_kafka_event_log(event.as_ptr(), &mut fac, &mut text, &mut level) == 0
                        && level <= 3
                    {
                        out.push(ConnectionEvent {
                            code: None,
                            text: c_string(text),
                        });
                    }
                }
                rd::RD_KAFKA_EVENT_ERROR => out.push(ConnectionEvent {
                    code: Some(RDKafkaErrorCode::from(rd::rd_kafka_event_error(
                        event.as_ptr(),
                    ))),
                    text: c_string(rd::rd_kafka_event_error_string(event.as_ptr())),
                }),
                _ => {}
            }
        }
    }
    out
}

unsafe extern "C" {
    /// libcrypto's text for an X509 verification error code (a static string).
    fn X509_verify_cert_error_string(n: c_long) -> *const c_char;
}

/// What librdkafka logs when our callback refuses a certificate, before the callback's text.
const VERDICT_MARKER: &str = "verification callback failed: ";

/// Keeps OpenSSL's own decision and writes its reason into `errstr`, which librdkafka logs
/// ("Certificate (subject=…, issuer=…) verification callback failed: <reason>").
unsafe extern "C" fn record_verdict(
    _rk: *mut rd::rd_kafka_t,
    _broker_name: *const c_char,
    _broker_id: i32,
    x509_error: *mut c_int,
    _depth: c_int,
    _buf: *const c_char,
    _size: usize,
    errstr: *mut c_char,
    errstr_size: usize,
    _opaque: *mut c_void,
) -> c_int {
    // SAFETY: librdkafka passes a valid pointer to the current verification error.
    let code = unsafe { *x509_error };
    if code == 0 {
        return 1;
    }
    // SAFETY: libcrypto returns a static NUL-terminated string for any code.
    let reason = unsafe { c_string(X509_verify_cert_error_string(c_long::from(code))) };
    if !errstr.is_null() && errstr_size > 0 {
        let n = reason.len().min(errstr_size - 1);
        // SAFETY: `errstr` is writable for `errstr_size` bytes; we write `n + 1 <= errstr_size`.
        unsafe {
            ptr::copy_nonoverlapping(reason.as_ptr().cast::<c_char>(), errstr, n);
            *errstr.add(n) = 0;
        }
    }
    0
}

/// OpenSSL's reason for refusing the broker's certificate ("certificate has expired",
/// "hostname mismatch", "IP address mismatch", "unable to get local issuer certificate", ...),
/// learnt from one more TLS handshake within `within`; `None` when the handshake gave none.
pub(crate) fn certificate_verdict(config: &ClientConfig, within: Duration) -> Option<String> {
    let native = config.create_native_config().ok()?;
    // SAFETY: `native` is a live configuration; the callback is a plain function that stays
    // valid for the program's life and touches only what librdkafka passes it.
    let set =
        unsafe { rd::rd_kafka_conf_set_ssl_cert_verify_cb(native.ptr(), Some(record_verdict)) };
    if set != rd::rd_kafka_conf_res_t::RD_KAFKA_CONF_OK {
        return None;
    }
    let client = Client::new(
        config,
        native,
        RDKafkaType::RD_KAFKA_PRODUCER,
        DefaultClientContext,
    )
    .ok()?;
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = client.fetch_metadata(None, left.min(Duration::from_millis(250)));
        let verdict = drain_events(Handle::of(&client))
            .into_iter()
            .find_map(|e| verdict_in(&e.text));
        if verdict.is_some() || Instant::now() >= deadline {
            return verdict;
        }
    }
}

/// The callback's text inside librdkafka's log line.
pub(crate) fn verdict_in(text: &str) -> Option<String> {
    let (_, reason) = text.split_once(VERDICT_MARKER)?;
    let reason = reason.trim();
    (!reason.is_empty()).then(|| reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_is_found_in_librdkafkas_log_line() {
        let line = "ssl://127.0.0.1:49096/bootstrap: Certificate (subject=/CN=localhost, \
                    issuer=/CN=ferry test CA) verification callback failed: certificate has expired";
        assert_eq!(verdict_in(line).as_deref(), Some("certificate has expired"));
        assert_eq!(
            verdict_in("SSL handshake failed: certificate verify failed"),
            None
        );
    }

    #[test]
    fn the_callback_keeps_openssls_decision_and_names_the_reason() {
        let mut buf = [0 as c_char; 64];
        let mut ok = 0;
        // SAFETY: valid pointers for the callback's reads and writes.
        let accepted = unsafe {
            record_verdict(
                ptr::null_mut(),
                ptr::null(),
                0,
                &mut ok,
                0,
                ptr::null(),
                0,
                buf.as_mut_ptr(),
                buf.len(),
                ptr::null_mut(),
            )
        };
        assert_eq!(accepted, 1);
        let mut expired = 10; // X509_V_ERR_CERT_HAS_EXPIRED
        // SAFETY: as above; a 16-byte buffer truncates the reason.
        let accepted = unsafe {
            record_verdict(
                ptr::null_mut(),
                ptr::null(),
                0,
                &mut expired,
                0,
                ptr::null(),
                0,
                buf.as_mut_ptr(),
                16,
                ptr::null_mut(),
            )
        };
        assert_eq!(accepted, 0);
        // SAFETY: the callback NUL-terminated what it wrote.
        let text = unsafe { c_string(buf.as_ptr()) };
        assert_eq!(text, "certificate has".to_string(), "truncated to 15 bytes");
    }
}
