//! Request and response bodies for the Kafka admin APIs librdkafka 2.12 has no call for:
//! AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), both KIP-455,
//! both flexible from version 0; DescribeClientQuotas (key 48) and AlterClientQuotas (key 49),
//! KIP-546, sent at version 1, their first flexible version. Pure encoding and decoding;
//! `native::raw_request` frames and sends them over librdkafka's own broker connection.
//!
//! Bodies are written without the request's trailing tagged-fields byte, which librdkafka adds
//! to every flexible request when it frames it; responses are read from after the response
//! header, which librdkafka has already consumed.

use std::collections::BTreeMap;

pub(crate) const ALTER_PARTITION_REASSIGNMENTS: i16 = 45;
pub(crate) const LIST_PARTITION_REASSIGNMENTS: i16 = 46;
pub(crate) const DESCRIBE_CLIENT_QUOTAS: i16 = 48;
pub(crate) const ALTER_CLIENT_QUOTAS: i16 = 49;
/// Both client-quota APIs have versions 0 and 1 (Kafka 2.6 to 4.3); version 1 (Kafka 2.8 and
/// later) differs only in being flexible, which is the encoding this module writes.
pub(crate) const CLIENT_QUOTAS_VERSION: i16 = 1;

/// A reassignment in progress on one partition, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    /// The full replica set during the move: the target plus the replicas being removed.
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl OngoingReassignment {
    /// The replicas the partition will have when the move is done.
    pub fn target(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }
    /// The replicas the partition had before the move started.
    pub fn original(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }
}

/// A response body that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub String);

// ------------------------------------------------------------------ writing

struct Writer(Vec<u8>);

impl Writer {
    fn uvarint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i8(&mut self, v: i8) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    /// float64: IEEE 754 binary64, big-endian.
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    /// Compact arrays and strings carry length + 1; 0 means null.
    fn len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    fn null(&mut self) {
        self.uvarint(0);
    }
    fn string(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }
    fn no_tags(&mut self) {
        self.uvarint(0);
    }
}

/// AlterPartitionReassignments v0: for each partition, the new replica list (leader-preferred
/// first), or `None` to cancel the partition's reassignment in progress.
pub(crate) fn alter_reassignments_request(
    timeout_ms: i32,
    targets: &BTreeMap<String, BTreeMap<i32, Option<Vec<i32>>>>,
) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i32(timeout_ms);
    w.len(targets.len());
    for (topic, partitions) in targets {
        w.string(topic);
        w.len(partitions.len());
        for (partition, replicas) in partitions {
            w.i32(*partition);
            match replicas {
                Some(list) => {
                    w.len(list.len());
                    for r in list {
                        w.i32(*r);
                    }
                }
                None => w.null(),
            }
            w.no_tags();
        }
        w.no_tags();
    }
    w.0
}

/// ListPartitionReassignments v0: `None` asks for every reassignment in progress.
pub(crate) fn list_reassignments_request(
    timeout_ms: i32,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i32(timeout_ms);
    match topics {
        None => w.null(),
        Some(topics) => {
            w.len(topics.len());
            for (topic, partitions) in topics {
                w.string(topic);
                w.len(partitions.len());
                for p in partitions {
                    w.i32(*p);
                }
                w.no_tags();
            }
        }
    }
    w.0
}

/// One component of a client-quota entity on the wire: its type (`user`, `client-id`, `ip`)
/// and its name, `None` for the type's default entity.
pub(crate) type EntityComponent = (String, Option<String>);

/// How a DescribeClientQuotas filter component matches an entity type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QuotaMatch {
    /// MatchType 0: this name.
    Exact(String),
    /// MatchType 1: the type's default entity.
    Default,
    /// MatchType 2: any entity that names this type (Match is null).
    #[allow(dead_code)]
    Any,
}

/// DescribeClientQuotas v1: filter components (entity type and match), and whether entities
/// with types the filter does not name are excluded (`strict`).
pub(crate) fn describe_client_quotas_request(
    components: &[(String, QuotaMatch)],
    strict: bool,
) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.len(components.len());
    for (entity_type, matching) in components {
        w.string(entity_type);
        match matching {
            QuotaMatch::Exact(name) => {
                w.i8(0);
                w.string(name);
            }
            QuotaMatch::Default => {
                w.i8(1);
                w.null();
            }
            QuotaMatch::Any => {
                w.i8(2);
                w.null();
            }
        }
        w.no_tags();
    }
    w.bool(strict);
    w.0
}

/// One operation of an AlterClientQuotas entry: set `key` to `value`, or remove `key`
/// (`value` is then ignored by the broker).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuotaOp {
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

/// AlterClientQuotas v1: per entity, the operations on its quota keys.
pub(crate) fn alter_client_quotas_request(
    entries: &[(Vec<EntityComponent>, Vec<QuotaOp>)],
    validate_only: bool,
) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.len(entries.len());
    for (entity, ops) in entries {
        w.len(entity.len());
        for (entity_type, name) in entity {
            w.string(entity_type);
            w.nullable_string(name.as_deref());
            w.no_tags();
        }
        w.len(ops.len());
        for op in ops {
            w.string(&op.key);
            w.f64(op.value);
            w.bool(op.remove);
            w.no_tags();
        }
        w.no_tags();
    }
    w.bool(validate_only);
    w.0
}

// ------------------------------------------------------------------ reading

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| {
            DecodeError(format!(
                "response ends at byte {} while reading {n} more",
                self.buf.len()
            ))
        })?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 64 bits".into()))
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or([0; 2]),
        ))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }
    /// A compact length: `None` for null.
    fn len(&mut self) -> Result<Option<usize>, DecodeError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n - 1).map_err(|_| DecodeError("length overflow".into()))?;
        if n > self.buf.len() {
            return Err(DecodeError(format!("length {n} exceeds the response")));
        }
        Ok(Some(n))
    }
    fn string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(String::from_utf8_lossy(self.take(n)?).into_owned())),
        }
    }
    fn i32s(&mut self) -> Result<Vec<i32>, DecodeError> {
        let n = self.len()?.unwrap_or(0);
        (0..n).map(|_| self.i32()).collect()
    }
    fn skip_tags(&mut self) -> Result<(), DecodeError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

/// A top-level or per-item error: code and the broker's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    pub code: i16,
    pub message: Option<String>,
}

/// AlterPartitionReassignments v0 response: the request-level error, then per partition.
pub(crate) struct AlterReassignmentsResponse {
    pub error: WireError,
    pub partitions: Vec<(String, i32, WireError)>,
}

pub(crate) fn alter_reassignments_response(
    body: &[u8],
) -> Result<AlterReassignmentsResponse, DecodeError> {
    let mut r = Reader { buf: body, at: 0 };
    let _throttle = r.i32()?;
    let error = WireError {
        code: r.i16()?,
        message: r.string()?,
    };
    let mut partitions = Vec::new();
    for _ in 0..r.len()?.unwrap_or(0) {
        let topic = r.string()?.unwrap_or_default();
        for _ in 0..r.len()?.unwrap_or(0) {
            let partition = r.i32()?;
            let e = WireError {
                code: r.i16()?,
                message: r.string()?,
            };
            r.skip_tags()?;
            partitions.push((topic.clone(), partition, e));
        }
        r.skip_tags()?;
    }
    r.skip_tags()?;
    Ok(AlterReassignmentsResponse { error, partitions })
}

pub(crate) fn list_reassignments_response(
    body: &[u8],
) -> Result<(WireError, Vec<OngoingReassignment>), DecodeError> {
    let mut r = Reader { buf: body, at: 0 };
    let _throttle = r.i32()?;
    let error = WireError {
        code: r.i16()?,
        message: r.string()?,
    };
    let mut out = Vec::new();
    for _ in 0..r.len()?.unwrap_or(0) {
        let topic = r.string()?.unwrap_or_default();
        for _ in 0..r.len()?.unwrap_or(0) {
            let partition = r.i32()?;
            let replicas = r.i32s()?;
            let adding = r.i32s()?;
            let removing = r.i32s()?;
            r.skip_tags()?;
            out.push(OngoingReassignment {
                topic: topic.clone(),
                partition,
                replicas,
                adding,
                removing,
            });
        }
        r.skip_tags()?;
    }
    r.skip_tags()?;
    Ok((error, out))
}

/// The entity components of a client-quota response entry (compact array of type and
/// nullable name, each with tagged fields).
fn quota_entity(r: &mut Reader<'_>) -> Result<Vec<EntityComponent>, DecodeError> {
    let mut entity = Vec::new();
    for _ in 0..r.len()?.unwrap_or(0) {
        let entity_type = r.string()?.unwrap_or_default();
        let name = r.string()?;
        r.skip_tags()?;
        entity.push((entity_type, name));
    }
    Ok(entity)
}

/// One entity DescribeClientQuotas matched, with its quota values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuotaEntry {
    pub entity: Vec<EntityComponent>,
    pub values: Vec<(String, f64)>,
}

/// DescribeClientQuotas v1 response: the request-level error, then the matching entities
/// (a null array, as sent with an error, reads as none).
pub(crate) fn describe_client_quotas_response(
    body: &[u8],
) -> Result<(WireError, Vec<QuotaEntry>), DecodeError> {
    let mut r = Reader { buf: body, at: 0 };
    let _throttle = r.i32()?;
    let error = WireError {
        code: r.i16()?,
        message: r.string()?,
    };
    let mut entries = Vec::new();
    for _ in 0..r.len()?.unwrap_or(0) {
        let entity = quota_entity(&mut r)?;
        let mut values = Vec::new();
        for _ in 0..r.len()?.unwrap_or(0) {
            let key = r.string()?.unwrap_or_default();
            let value = r.f64()?;
            r.skip_tags()?;
            values.push((key, value));
        }
        r.skip_tags()?;
        entries.push(QuotaEntry { entity, values });
    }
    r.skip_tags()?;
    Ok((error, entries))
}

/// AlterClientQuotas v1 response: an error (code 0 for success) per entity.
pub(crate) fn alter_client_quotas_response(
    body: &[u8],
) -> Result<Vec<(WireError, Vec<EntityComponent>)>, DecodeError> {
    let mut r = Reader { buf: body, at: 0 };
    let _throttle = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..r.len()?.unwrap_or(0) {
        let error = WireError {
            code: r.i16()?,
            message: r.string()?,
        };
        let entity = quota_entity(&mut r)?;
        r.skip_tags()?;
        out.push((error, entity));
    }
    r.skip_tags()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alter_request_matches_the_wire_format() {
        let targets = BTreeMap::from([(
            "t".to_string(),
            BTreeMap::from([(0, Some(vec![1, 2])), (1, None)]),
        )]);
        let body = alter_reassignments_request(30_000, &targets);
        let expected: Vec<u8> = [
            &30_000i32.to_be_bytes()[..],
            &[2],       // one topic
            &[2, b't'], // name "t"
            &[3],       // two partitions
            &0i32.to_be_bytes(),
            &[3], // two replicas
            &1i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &[0], // partition tags
            &1i32.to_be_bytes(),
            &[0], // null replicas: cancel
            &[0], // partition tags
            &[0], // topic tags
        ]
        .concat();
        assert_eq!(body, expected);
    }

    #[test]
    fn list_request_for_everything_is_a_null_array() {
        assert_eq!(
            list_reassignments_request(5, None),
            [0, 0, 0, 5, 0].to_vec()
        );
    }

    fn list_response_bytes() -> Vec<u8> {
        [
            &0i32.to_be_bytes()[..], // throttle
            &0i16.to_be_bytes(),     // error code
            &[0],                    // null message
            &[2],                    // one topic
            &[2, b't'],
            &[2], // one partition
            &3i32.to_be_bytes(),
            &[4],
            &1i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &3i32.to_be_bytes(),
            &[2],
            &3i32.to_be_bytes(), // adding
            &[2],
            &1i32.to_be_bytes(), // removing
            &[1, 7, 2, 9, 9],    // one unknown tagged field (tag 7, two bytes), skipped
            &[0],
            &[0],
        ]
        .concat()
    }

    #[test]
    fn list_response_parses_and_derives_target_and_original() {
        let (err, list) = list_reassignments_response(&list_response_bytes()).unwrap();
        assert_eq!(err.code, 0);
        assert_eq!(list.len(), 1);
        let o = &list[0];
        assert_eq!((o.topic.as_str(), o.partition), ("t", 3));
        assert_eq!(o.target(), vec![2, 3]);
        assert_eq!(o.original(), vec![1, 2]);
    }

    #[test]
    fn truncated_responses_are_errors_not_panics() {
        let bytes = list_response_bytes();
        for cut in 0..bytes.len() - 1 {
            assert!(
                list_reassignments_response(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        assert!(alter_reassignments_response(&[0, 0]).is_err());
    }

    #[test]
    fn alter_response_keeps_per_partition_errors() {
        let msg = b"no such broker";
        let bytes: Vec<u8> = [
            &0i32.to_be_bytes()[..],
            &0i16.to_be_bytes(),
            &[0],
            &[2],
            &[2, b't'],
            &[2],
            &0i32.to_be_bytes(),
            &39i16.to_be_bytes(), // INVALID_REPLICA_ASSIGNMENT
            &[msg.len() as u8 + 1],
            msg,
            &[0],
            &[0],
            &[0],
        ]
        .concat();
        let r = alter_reassignments_response(&bytes).unwrap();
        assert_eq!(r.error.code, 0);
        assert_eq!(
            r.partitions,
            vec![(
                "t".to_string(),
                0,
                WireError {
                    code: 39,
                    message: Some("no such broker".into())
                }
            )]
        );
    }

    // Client quotas (KIP-546), version 1. Expected bytes are written out from the message
    // definitions (DescribeClientQuotasRequest/Response.json, AlterClientQuotasRequest/
    // Response.json): compact strings and arrays carry length + 1 as an unsigned varint, a
    // null string is 0, int8 and bool are one byte, float64 is big-endian IEEE 754, and every
    // struct ends with its tagged fields (0: none). The request's own trailing tags byte is
    // librdkafka's to write.

    #[test]
    fn describe_quotas_request_matches_the_wire_format() {
        let body = describe_client_quotas_request(
            &[
                ("user".into(), QuotaMatch::Exact("alice".into())),
                ("client-id".into(), QuotaMatch::Default),
                ("ip".into(), QuotaMatch::Any),
            ],
            true,
        );
        let expected: Vec<u8> = [
            &[0x04][..], // three components
            &[0x05],
            b"user",
            &[0x00], // MatchType 0: exact
            &[0x06],
            b"alice",
            &[0x00], // component tags
            &[0x0a],
            b"client-id",
            &[0x01], // MatchType 1: default
            &[0x00], // Match: null
            &[0x00],
            &[0x03],
            b"ip",
            &[0x02], // MatchType 2: any
            &[0x00],
            &[0x00],
            &[0x01], // Strict: true
        ]
        .concat();
        assert_eq!(body, expected);
    }

    #[test]
    fn alter_quotas_request_matches_the_wire_format() {
        let body = alter_client_quotas_request(
            &[(
                vec![
                    ("user".into(), Some("alice".into())),
                    ("client-id".into(), None),
                ],
                vec![
                    QuotaOp {
                        key: "producer_byte_rate".into(),
                        value: 1_048_576.0,
                        remove: false,
                    },
                    QuotaOp {
                        key: "request_percentage".into(),
                        value: 0.0,
                        remove: true,
                    },
                ],
            )],
            false,
        );
        let expected: Vec<u8> = [
            &[0x02][..], // one entry
            &[0x03],     // two entity components
            &[0x05],
            b"user",
            &[0x06],
            b"alice",
            &[0x00],
            &[0x0a],
            b"client-id",
            &[0x00], // EntityName: null, the default client id
            &[0x00],
            &[0x03], // two ops
            &[0x13],
            b"producer_byte_rate",
            &[0x41, 0x30, 0, 0, 0, 0, 0, 0], // 1048576.0 = 2^20
            &[0x00],                         // Remove: false
            &[0x00],
            &[0x13],
            b"request_percentage",
            &[0; 8],
            &[0x01], // Remove: true
            &[0x00],
            &[0x00], // entry tags
            &[0x00], // ValidateOnly: false
        ]
        .concat();
        assert_eq!(body, expected);
    }

    fn describe_quotas_response_bytes() -> Vec<u8> {
        [
            &[0, 0, 0, 0][..], // throttle
            &[0, 0],           // error code
            &[0x00],           // null message
            &[0x02],           // one entry
            &[0x02],           // one entity component
            &[0x05],
            b"user",
            &[0x06],
            b"alice",
            &[0x00],
            &[0x03], // two values
            &[0x13],
            b"request_percentage",
            &[0x40, 0x29, 0, 0, 0, 0, 0, 0], // 12.5
            &[0x01, 0x05, 0x01, 0xff],       // one unknown tagged field (tag 5, one byte)
            &[0x13],
            b"producer_byte_rate",
            &[0x41, 0x30, 0, 0, 0, 0, 0, 0],
            &[0x00],
            &[0x00], // entry tags
            &[0x00], // response tags
        ]
        .concat()
    }

    #[test]
    fn describe_quotas_response_parses() {
        let (error, entries) =
            describe_client_quotas_response(&describe_quotas_response_bytes()).unwrap();
        assert_eq!(error.code, 0);
        assert_eq!(
            entries,
            vec![QuotaEntry {
                entity: vec![("user".into(), Some("alice".into()))],
                values: vec![
                    ("request_percentage".into(), 12.5),
                    ("producer_byte_rate".into(), 1_048_576.0),
                ],
            }]
        );
    }

    #[test]
    fn describe_quotas_error_with_null_entries_keeps_the_message() {
        let msg = b"Authorization failed.";
        let bytes: Vec<u8> = [
            &[0, 0, 0, 0][..],
            &29i16.to_be_bytes(), // CLUSTER_AUTHORIZATION_FAILED
            &[msg.len() as u8 + 1],
            msg,
            &[0x00], // Entries: null
            &[0x00],
        ]
        .concat();
        let (error, entries) = describe_client_quotas_response(&bytes).unwrap();
        assert_eq!(
            error,
            WireError {
                code: 29,
                message: Some("Authorization failed.".into())
            }
        );
        assert!(entries.is_empty());
    }

    #[test]
    fn alter_quotas_response_keeps_per_entity_errors() {
        let msg = b"Invalid ip";
        let bytes: Vec<u8> = [
            &[0, 0, 0, 0][..],
            &[0x03], // two entries
            &[0, 0],
            &[0x00],
            &[0x02],
            &[0x05],
            b"user",
            &[0x00], // the default user
            &[0x00],
            &[0x00],
            &42i16.to_be_bytes(), // INVALID_REQUEST
            &[msg.len() as u8 + 1],
            msg,
            &[0x02],
            &[0x03],
            b"ip",
            &[0x04],
            b"x.y",
            &[0x00],
            &[0x00],
            &[0x00],
        ]
        .concat();
        let entries = alter_client_quotas_response(&bytes).unwrap();
        assert_eq!(
            entries,
            vec![
                (
                    WireError {
                        code: 0,
                        message: None
                    },
                    vec![("user".into(), None)]
                ),
                (
                    WireError {
                        code: 42,
                        message: Some("Invalid ip".into())
                    },
                    vec![("ip".into(), Some("x.y".into()))]
                ),
            ]
        );
    }

    #[test]
    fn truncated_quota_responses_are_errors_not_panics() {
        let bytes = describe_quotas_response_bytes();
        for cut in 0..bytes.len() - 1 {
            assert!(
                describe_client_quotas_response(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        assert!(alter_client_quotas_response(&[0, 0, 0, 0, 0x02, 0]).is_err());
    }
}
