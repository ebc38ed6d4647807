//! DescribeLogDirs (key 35), which librdkafka 2.12 has no call for: the size of each partition
//! replica a broker holds, per log directory. Version 2, the first flexible one (Kafka 2.6 and
//! later; 4.0 dropped only version 0). Pure encoding and decoding; `native::raw_request_to`
//! frames and sends it to one broker over librdkafka's own connection. Used to say how many
//! bytes a partition reassignment still has to copy.
//!
//! Like `protocol`, bodies are written without the request's trailing tagged-fields byte
//! (librdkafka adds it) and responses are read from after the response header. The few
//! primitives are repeated here rather than shared, so this file stands alone.

use std::collections::BTreeMap;

pub(crate) const DESCRIBE_LOG_DIRS: i16 = 35;
pub(crate) const DESCRIBE_LOG_DIRS_VERSION: i16 = 2;

/// A response body that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub String);

/// One replica's log, as one broker reports it for one of its log directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaLog {
    pub log_dir: String,
    pub topic: String,
    pub partition: i32,
    pub size: i64,
    /// A replica being moved between this broker's own directories (AlterReplicaLogDirs).
    pub future: bool,
}

/// A log directory the broker could not describe (offline, or the request was refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirError {
    pub log_dir: String,
    pub code: i16,
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// DescribeLogDirs v2 for these partitions of these topics (never null: a null list asks
/// for every replica on the broker).
pub(crate) fn describe_log_dirs_request(topics: &BTreeMap<String, Vec<i32>>) -> Vec<u8> {
    let mut out = Vec::new();
    uvarint(&mut out, topics.len() as u64 + 1);
    for (topic, partitions) in topics {
        uvarint(&mut out, topic.len() as u64 + 1);
        out.extend_from_slice(topic.as_bytes());
        uvarint(&mut out, partitions.len() as u64 + 1);
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        uvarint(&mut out, 0); // topic tags
    }
    out
}

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
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
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
    /// A compact length; null reads as empty.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(0);
        }
        let n = usize::try_from(n - 1).map_err(|_| DecodeError("length overflow".into()))?;
        if n > self.buf.len() {
            return Err(DecodeError(format!("length {n} exceeds the response")));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn skip_tags(&mut self) -> Result<(), DecodeError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?)
                .map_err(|_| DecodeError("length overflow".into()))?;
            self.take(size)?;
        }
        Ok(())
    }
}

/// DescribeLogDirs v2 response: every replica log the broker listed, and the log directories
/// it reported an error for.
pub(crate) fn describe_log_dirs_response(
    body: &[u8],
) -> Result<(Vec<ReplicaLog>, Vec<DirError>), DecodeError> {
    let mut r = Reader { buf: body, at: 0 };
    let _throttle = r.array::<4>()?;
    let (mut logs, mut errors) = (Vec::new(), Vec::new());
    for _ in 0..r.len()? {
        let code = i16::from_be_bytes(r.array()?);
        let log_dir = r.string()?;
        if code != 0 {
            errors.push(DirError {
                log_dir: log_dir.clone(),
                code,
            });
        }
        for _ in 0..r.len()? {
            let topic = r.string()?;
            for _ in 0..r.len()? {
                let partition = i32::from_be_bytes(r.array()?);
                let size = i64::from_be_bytes(r.array()?);
                let _offset_lag = r.array::<8>()?;
                let future = r.take(1)?[0] != 0;
                r.skip_tags()?;
                logs.push(ReplicaLog {
                    log_dir: log_dir.clone(),
                    topic: topic.clone(),
                    partition,
                    size,
                    future,
                });
            }
            r.skip_tags()?;
        }
        r.skip_tags()?;
    }
    r.skip_tags()?;
    Ok((logs, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_matches_the_wire_format() {
        let body = describe_log_dirs_request(&BTreeMap::from([("t".to_string(), vec![0, 3])]));
        let expected: Vec<u8> = [
            &[2][..],   // one topic
            &[2, b't'], // name "t"
            &[3],       // two partitions
            &0i32.to_be_bytes(),
            &3i32.to_be_bytes(),
            &[0], // topic tags
        ]
        .concat();
        assert_eq!(body, expected);
    }

    fn response() -> Vec<u8> {
        [
            &0i32.to_be_bytes()[..], // throttle
            &[3],                    // two log dirs
            // first: fine, one topic with two replicas (one a future one)
            &0i16.to_be_bytes(),
            &[5],
            b"/d/1",
            &[2],
            &[2, b't'],
            &[3],
            &0i32.to_be_bytes(),
            &1234i64.to_be_bytes(),
            &0i64.to_be_bytes(),
            &[0],
            &[0], // partition tags
            &3i32.to_be_bytes(),
            &9i64.to_be_bytes(),
            &5i64.to_be_bytes(),
            &[1],
            &[1, 0, 1, 7], // a partition tag (tag 0, one byte) is skipped
            &[0],          // topic tags
            &[0],          // dir tags
            // second: offline (KAFKA_STORAGE_ERROR, 56), no topics
            &56i16.to_be_bytes(),
            &[5],
            b"/d/2",
            &[1],
            &[0],
            &[0], // response tags
        ]
        .concat()
    }

    #[test]
    fn response_lists_replicas_and_dir_errors() {
        let (logs, errors) = describe_log_dirs_response(&response()).unwrap();
        assert_eq!(
            logs,
            vec![
                ReplicaLog {
                    log_dir: "/d/1".into(),
                    topic: "t".into(),
                    partition: 0,
                    size: 1234,
                    future: false
                },
                ReplicaLog {
                    log_dir: "/d/1".into(),
                    topic: "t".into(),
                    partition: 3,
                    size: 9,
                    future: true
                },
            ]
        );
        assert_eq!(
            errors,
            vec![DirError {
                log_dir: "/d/2".into(),
                code: 56
            }]
        );
    }

    #[test]
    fn truncated_responses_are_errors_not_panics() {
        let full = response();
        for n in 0..full.len() {
            assert!(
                describe_log_dirs_response(&full[..n]).is_err(),
                "a response cut at byte {n} parsed"
            );
        }
        // A length larger than the response is refused before it is used.
        assert!(describe_log_dirs_response(&[0, 0, 0, 0, 0xff, 0xff, 0x7f]).is_err());
    }
}
