//! How much a partition reassignment still has to copy: the replicas' log sizes, asked of each
//! broker with DescribeLogDirs (`protocol_logdirs`, sent over librdkafka's connection to that
//! broker), and the bytes the added replicas still lack.

use std::collections::{BTreeMap, HashMap};

use crate::admin::{Admin, AdminError};
use crate::native::{self, error_code};
use crate::protocol::OngoingReassignment;
use crate::protocol_logdirs::{self, DESCRIBE_LOG_DIRS, DESCRIBE_LOG_DIRS_VERSION};

/// (broker, partition) → bytes of that replica's log on that broker.
pub type ReplicaSizes = HashMap<(i32, i32), u64>;

impl Admin {
    /// The size of each replica log of these partitions of `topic` on each of `brokers`, one
    /// DescribeLogDirs request per broker. A replica a broker does not list has no entry; a
    /// replica moving between a broker's own directories counts with its current log only.
    /// Any broker that does not answer fails the whole call: a partial answer would understate
    /// what is held and so overstate what is left.
    pub async fn replica_log_sizes(
        &self,
        topic: &str,
        partitions: &[i32],
        brokers: &[i32],
    ) -> Result<ReplicaSizes, AdminError> {
        const OP: &str = "describing log dirs";
        let mut sizes = ReplicaSizes::new();
        if partitions.is_empty() {
            return Ok(sizes);
        }
        let asked = BTreeMap::from([(topic.to_string(), partitions.to_vec())]);
        for &broker in brokers {
            let body = protocol_logdirs::describe_log_dirs_request(&asked);
            let response = self
                .blocking(move |rk, timeout| {
                    native::raw_request_to(
                        rk,
                        Some(broker),
                        DESCRIBE_LOG_DIRS,
                        DESCRIBE_LOG_DIRS_VERSION,
                        true,
                        &body,
                        timeout,
                    )
                })
                .await?
                .map_err(|e| AdminError::native(OP, e))?;
            let (logs, errors) =
                protocol_logdirs::describe_log_dirs_response(&response).map_err(|e| {
                    AdminError::Other {
                        operation: OP,
                        message: format!("could not read broker {broker}'s answer: {}", e.0),
                    }
                })?;
            if let Some(e) = errors.first() {
                let code = error_code(i32::from(e.code));
                return Err(AdminError::Kafka {
                    operation: OP,
                    code,
                    message: format!("broker {broker}, log dir {:?}: {code}", e.log_dir),
                });
            }
            for log in logs {
                if log.future || log.topic != topic {
                    continue;
                }
                *sizes.entry((broker, log.partition)).or_insert(0) += log.size.max(0) as u64;
            }
        }
        Ok(sizes)
    }
}

/// Bytes the added replicas of these moving partitions still lack: for each added replica, the
/// largest log among the partition's original replicas minus what the new replica holds (none
/// yet: all of it). `None` when no original replica of some partition has a known size.
/// An estimate: logs also grow and roll while they are copied.
pub fn bytes_left(moving: &[OngoingReassignment], sizes: &ReplicaSizes) -> Option<u64> {
    let mut left = 0u64;
    for m in moving {
        let source = m
            .original()
            .iter()
            .filter_map(|b| sizes.get(&(*b, m.partition)))
            .max()
            .copied()?;
        for added in &m.adding {
            let held = sizes.get(&(*added, m.partition)).copied().unwrap_or(0);
            left += source.saturating_sub(held);
        }
    }
    Some(left)
}

/// Every broker holding a replica of these moving partitions, old or new.
pub fn brokers_involved(moving: &[OngoingReassignment]) -> Vec<i32> {
    let mut out: Vec<i32> = moving
        .iter()
        .flat_map(|m| m.replicas.iter().copied())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving(partition: i32, replicas: &[i32], adding: &[i32]) -> OngoingReassignment {
        OngoingReassignment {
            topic: "t".into(),
            partition,
            replicas: replicas.to_vec(),
            adding: adding.to_vec(),
            removing: Vec::new(),
        }
    }

    #[test]
    fn added_replicas_lack_what_the_largest_original_holds() {
        let m = [moving(0, &[1, 2, 3], &[2, 3]), moving(1, &[2, 1], &[1])];
        let sizes = ReplicaSizes::from([
            ((1, 0), 1000),
            ((2, 0), 400), // partly copied
            // broker 3 has no log for partition 0 yet: all 1000 left
            ((2, 1), 50),
            ((1, 1), 80), // an added replica ahead of the leader (a roll): nothing left
        ]);
        assert_eq!(bytes_left(&m, &sizes), Some(600 + 1000));
        assert_eq!(brokers_involved(&m), vec![1, 2, 3]);
    }

    #[test]
    fn unknown_source_sizes_mean_unknown_bytes() {
        let m = [moving(0, &[1, 2], &[2])];
        assert_eq!(bytes_left(&m, &ReplicaSizes::from([((2, 0), 5)])), None);
        assert_eq!(bytes_left(&[], &ReplicaSizes::new()), Some(0));
        // Only removing replicas: nothing to copy.
        let shrink = OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![1, 2, 3],
            adding: vec![],
            removing: vec![3],
        };
        assert_eq!(
            bytes_left(&[shrink], &ReplicaSizes::from([((1, 0), 7)])),
            Some(0)
        );
    }
}
