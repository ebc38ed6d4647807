//! Replica assignments for a replication-factor change that move as little data as possible.
//!
//! Per partition: every current replica that can stay stays (raising keeps all of them,
//! lowering drops as few as needed); new replicas go to the least-loaded brokers, preferring
//! racks the partition does not use yet; the current leader stays first in the list, so it
//! stays the preferred leader and a preferred-leader election afterwards moves no leadership
//! it need not move.

use std::collections::{BTreeMap, HashMap};

/// A live broker and its `broker.rack`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub id: i32,
    pub rack: Option<String>,
}

/// One partition as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPartition {
    pub partition: i32,
    /// In Kafka's order: the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub leader: Option<i32>,
}

/// New replica lists, leader first, for the partitions whose replica set changes.
/// `loads` is how many replicas each broker already holds (all topics); brokers missing from
/// it count as empty.
pub fn change_replication_factor(
    partitions: &[CurrentPartition],
    brokers: &[Broker],
    loads: &HashMap<i32, usize>,
    target: usize,
) -> Result<BTreeMap<i32, Vec<i32>>, String> {
    if target == 0 {
        return Err("a replication factor must be at least 1".into());
    }
    if target > brokers.len() {
        return Err(format!(
            "replication factor {target} needs {target} brokers; the cluster has {} live",
            brokers.len()
        ));
    }
    let rack_of: HashMap<i32, Option<&str>> =
        brokers.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let mut load: HashMap<i32, usize> = brokers
        .iter()
        .map(|b| (b.id, loads.get(&b.id).copied().unwrap_or(0)))
        .collect();
    let mut ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    let n = ids.len();
    let position = |id: i32| ids.binary_search(&id).unwrap_or(0);
    let mut out = BTreeMap::new();
    for p in partitions {
        // Leader first: the current leader if it is a replica, else the preferred one.
        let mut current = p.replicas.clone();
        if let Some(l) = p.leader
            && let Some(i) = current.iter().position(|r| *r == l)
        {
            let l = current.remove(i);
            current.insert(0, l);
        }
        let mut next = current.clone();
        while next.len() > target {
            // Drop the follower whose rack is most crowded in this partition, then the one
            // on the busiest broker, never the leader (index 0).
            let rack_count = |b: i32| {
                next.iter()
                    .filter(|r| {
                        rack_of.get(r).copied().flatten() == rack_of.get(&b).copied().flatten()
                    })
                    .count()
            };
            let victim = next[1..]
                .iter()
                .copied()
                .max_by_key(|b| (rack_count(*b), load.get(b).copied().unwrap_or(0), *b))
                .ok_or("no follower to remove")?;
            next.retain(|r| *r != victim);
            if let Some(l) = load.get_mut(&victim) {
                *l = l.saturating_sub(1);
            }
        }
        while next.len() < target {
            let used_racks: Vec<Option<&str>> = next
                .iter()
                .map(|r| rack_of.get(r).copied().flatten())
                .collect();
            // Ties go to the broker next after the leader in id order, as Kafka's own
            // placement does, so equal loads still spread.
            let leader_pos = next.first().map_or(0, |l| position(*l));
            let pick = brokers
                .iter()
                .filter(|b| !next.contains(&b.id))
                .min_by_key(|b| {
                    let new_rack = b.rack.is_some() && !used_racks.contains(&b.rack.as_deref());
                    let after_leader = (position(b.id) + n - leader_pos) % n;
                    (
                        !new_rack,
                        load.get(&b.id).copied().unwrap_or(0),
                        after_leader,
                    )
                })
                .ok_or_else(|| format!("no broker left for partition {}", p.partition))?;
            next.push(pick.id);
            *load.entry(pick.id).or_insert(0) += 1;
        }
        if next != p.replicas {
            out.insert(p.partition, next);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[(i32, Option<&str>)]) -> Vec<Broker> {
        racks
            .iter()
            .map(|(id, r)| Broker {
                id: *id,
                rack: r.map(str::to_string),
            })
            .collect()
    }

    fn part(partition: i32, replicas: &[i32], leader: i32) -> CurrentPartition {
        CurrentPartition {
            partition,
            replicas: replicas.to_vec(),
            leader: Some(leader),
        }
    }

    #[test]
    fn raising_keeps_every_replica_and_spreads_new_ones_by_load() {
        let b = brokers(&[(1, None), (2, None), (3, None)]);
        let parts = [part(0, &[1], 1), part(1, &[2], 2), part(2, &[3], 3)];
        let loads = HashMap::from([(1, 1), (2, 1), (3, 1)]);
        let out = change_replication_factor(&parts, &b, &loads, 2).unwrap();
        for p in &parts {
            let next = &out[&p.partition];
            assert_eq!(next[0], p.replicas[0], "leader stays first");
            assert_eq!(next.len(), 2);
        }
        // Each broker gets exactly one new replica: loads stay even.
        let mut added: Vec<i32> = out.values().map(|v| v[1]).collect();
        added.sort();
        assert_eq!(added, vec![1, 2, 3]);
    }

    #[test]
    fn least_loaded_brokers_are_chosen_first() {
        let b = brokers(&[(1, None), (2, None), (3, None)]);
        let loads = HashMap::from([(2, 50), (3, 1)]);
        let out = change_replication_factor(&[part(0, &[1], 1)], &b, &loads, 2).unwrap();
        assert_eq!(out[&0], vec![1, 3]);
    }

    #[test]
    fn new_replicas_prefer_an_unused_rack() {
        let b = brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]);
        let loads = HashMap::from([(3, 100)]);
        let out = change_replication_factor(&[part(0, &[1], 1)], &b, &loads, 2).unwrap();
        assert_eq!(out[&0], vec![1, 3], "rack b despite its load");
    }

    #[test]
    fn lowering_keeps_the_leader_and_drops_a_crowded_rack_first() {
        let b = brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]);
        // Leader is 2 (not the preferred 1): it stays, first.
        let out =
            change_replication_factor(&[part(0, &[1, 2, 3], 2)], &b, &HashMap::new(), 2).unwrap();
        assert_eq!(out[&0], vec![2, 3]);
    }

    #[test]
    fn unchanged_partitions_are_left_out_and_impossible_factors_refused() {
        let b = brokers(&[(1, None), (2, None)]);
        let out =
            change_replication_factor(&[part(0, &[1, 2], 1)], &b, &HashMap::new(), 2).unwrap();
        assert!(out.is_empty());
        let err =
            change_replication_factor(&[part(0, &[1], 1)], &b, &HashMap::new(), 3).unwrap_err();
        assert!(err.contains("2 live"), "{err}");
    }

    #[test]
    fn a_leader_moved_away_from_the_preferred_replica_is_put_first() {
        let b = brokers(&[(1, None), (2, None), (3, None)]);
        let out =
            change_replication_factor(&[part(0, &[1, 2], 2)], &b, &HashMap::new(), 3).unwrap();
        assert_eq!(out[&0], vec![2, 1, 3]);
    }
}
