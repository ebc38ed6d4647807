//! Request and response bodies for the two Kafka admin APIs librdkafka 2.12 has no call for:
//! AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), both KIP-455,
//! both flexible from version 0. Pure encoding and decoding; `native::raw_request` frames and
//! sends them over librdkafka's own broker connection.
//!
//! Bodies are written without the request's trailing tagged-fields byte, which librdkafka adds
//! to every flexible request when it frames it; responses are read from after the response
//! header, which librdkafka has already consumed.

use std::collections::BTreeMap;

pub(crate) const ALTER_PARTITION_REASSIGNMENTS: i16 = 45;
pub(crate) const LIST_PARTITION_REASSIGNMENTS: i16 = 46;

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
}
